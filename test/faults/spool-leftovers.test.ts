/**
 * Spool files do not pile up: the output files of a server killed before its reply left are removed
 * at once, and a stage removes the spool directories of pystage processes that are gone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createStage } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

// A TMPDIR of this file's own: the stage's spool directory is the only one there, and leftovers are ours.
const tmp = mkdtempSync(join(tmpdir(), 'spool-test-'));
process.env.TMPDIR = tmp;
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the spool directory of a process that is gone is removed when a stage starts; others are kept', async () => {
  const deadPid = spawnSync('true').pid!;
  const orphan = join(tmp, `pystage-${deadPid}-a1B2c3`);
  const live = join(tmp, `pystage-${process.pid}-d4E5f6`);
  const foreign = join(tmp, 'pystage-notapid');
  for (const dir of [orphan, live, foreign]) {
    mkdirSync(dir);
    writeFileSync(join(dir, 'out-1-x.json'), 'x'.repeat(1000));
  }
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'e', file: 'echo.py' }] });
  await stage.close();
  assert.equal(existsSync(orphan), false, 'the dead process\'s spool dir was removed');
  assert.equal(existsSync(live), true, 'a running process\'s spool dir is kept');
  assert.equal(existsSync(foreign), true, 'a directory not named by a pid is not ours to remove');
});

test('a server SIGKILLed after writing an output file, before its reply left: the file goes at once', async () => {
  const before = new Set(readdirSync(tmp));
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxAttempts: 2,
    models: [{ name: 'big', file: 'spill_then_die.py' }],
  });
  try {
    const spoolDirs = readdirSync(tmp).filter((name) => !before.has(name));
    assert.equal(spoolDirs.length, 1, `this stage's spool dir: ${spoolDirs}`);
    const spool = join(tmp, spoolDirs[0]!);
    const [killed] = await collect(stage.process([{ key: 'a', seq: 1, die: true }]));
    assert.equal(killed?.kind, 'error', 'the message killed its server every time it ran');
    const [ok] = await collect(stage.process([{ key: 'a', seq: 2 }]));
    assert.equal(ok?.kind, 'output');
    assert.equal(stage.stats().restarts, 2);
    // The running server's socket is there (servers listen on a Unix socket in the spool dir); nothing else.
    const left = readdirSync(spool);
    assert.deepEqual(left.filter((name) => !name.endsWith('.sock')), [], 'no output file of the killed servers is left in the spool dir');
    assert.deepEqual(left.filter((name) => name.endsWith('.sock')), [`p0.t${/\.t(\d+)\./.exec(String((await stage.status())[0]!.uniq))![1]}.3.sock`], 'only the third (running) server\'s socket: the killed ones\' are removed');
  } finally {
    await stage.close();
  }
});
