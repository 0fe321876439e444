/**
 * scripts/temp-guard.sh, which `npm test` runs the suite under: TMPDIR is a fresh directory, and
 * anything a test leaves in it fails the run (named), pass or fail, and is removed. And the Redis
 * helper on a machine without redis-server, which used to leave its directory behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './support/paths.js';
import { startRedis } from './support/redis-server.js';
import { tempDir } from './support/temp-dirs.js';

const guard = join(repoRoot, 'scripts', 'temp-guard.sh');

function guarded(command: string) {
  const base = tempDir('pystage-guard-');
  const run = spawnSync('sh', [guard, 'sh', '-c', command], { encoding: 'utf8', env: { ...process.env, TMPDIR: base } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, left: readdirSync(base) };
}

test('a suite that cleans up passes with its own exit code, in a TMPDIR of its own', () => {
  const clean = guarded('d=$(mktemp -d); rm -r "$d"; echo "$TMPDIR"');
  assert.equal(clean.code, 0, clean.stderr);
  assert.match(clean.stdout, /pystage-test-tmp\.\w+\n$/);
  assert.ok(!existsSync(clean.stdout.trim()), 'the guarded TMPDIR is removed');
  assert.deepEqual(clean.left, []);
  assert.equal(guarded('exit 3').code, 3, 'a failing suite keeps its exit code');
});

test('anything left in the temp folder fails the run, is named, and is removed', () => {
  const litter = guarded('mkdir "$TMPDIR/pystage-redis-abc"; touch "$TMPDIR/stray.txt"');
  assert.equal(litter.code, 1);
  assert.match(litter.stderr, /left in the temp folder.*pystage-redis-abc.*stray\.txt|left in the temp folder.*stray\.txt.*pystage-redis-abc/);
  assert.deepEqual(litter.left, [], 'removed, so a failing run does not litter the machine either');
});

test('the tests\' redis-server helper on a machine without redis-server: a clear rejection, no directory left behind', async () => {
  const base = tempDir('pystage-noredis-');
  const saved = { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR };
  // os.tmpdir() reads TMPDIR at each call: the helper's data directory goes into `base`.
  process.env.PATH = base;
  process.env.TMPDIR = base;
  try {
    await assert.rejects(startRedis(), /cannot start redis-server \(the Redis tests need redis-server 7\+ on PATH\): spawn redis-server ENOENT/);
  } finally {
    process.env.PATH = saved.PATH;
    process.env.TMPDIR = saved.TMPDIR;
  }
  assert.deepEqual(readdirSync(base), [], 'no pystage-redis-* directory left');
});
