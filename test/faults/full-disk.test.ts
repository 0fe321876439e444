/**
 * A full disk (a 2 MB tmpfs as TMPDIR): a message that cannot be spooled fails alone with an error naming its
 * model and what to do, leaves no partial file behind, and later messages that fit still go through.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

test('a spool write that fills the disk removes what it wrote and names the message\'s model and the remedy', async () => {
  const mount = mkdtempSync(join(tmpdir(), 'pystage-tmpfs-'));
  const before = process.env.TMPDIR;
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
  try {
    process.env.TMPDIR = mount;
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', inlineLimit: 256 * 1024,
      models: [{ name: 'e', file: 'echo_blob.py' }],
    });
    try {
      const blob = (n: number) => 'b'.repeat(n);
      const records = await collect(stage.process([
        { key: 'a', blob: blob(10) },
        { key: 'a', blob: blob(2_500_000) },
        // 700 KB in and 700 KB out: fits only if nothing of the failed write is left.
        { key: 'a', blob: blob(700_000) },
      ]));
      records.sort((x, y) => x.offset - y.offset);
      assert.deepEqual(records.map((r) => r.kind === 'output' ? (r as StageOutput).output.length : r.error.code), [10, 'PYSTAGE_SPOOL_WRITE', 700_000]);
      const failed = records[1]!;
      assert.ok(failed.kind === 'error');
      assert.equal(failed.error.model, 'e');
      assert.equal(failed.error.type, 'ENOSPC');
      assert.match(failed.error.message, /free space there, or point TMPDIR elsewhere/);
      const [spool] = readdirSync(mount).filter((name) => name.startsWith('pystage-'));
      assert.deepEqual(readdirSync(join(mount, spool!)).filter((name) => name !== '.lock' && !name.endsWith('.sock')), [], 'no partial file left in the spool directory (its lock and the server socket stay)');
    } finally {
      await stage.close();
    }
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});
