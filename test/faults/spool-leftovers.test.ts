/**
 * Spool files do not pile up: the output files of a server killed before its reply left are removed
 * at once, and a stage removes the spool directories of pystage processes that are gone.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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
    // Both restarts were for the server dying under the message (its connection closed), the fault injected.
    assert.equal((stage.stats().restartCauses.closed ?? 0) + (stage.stats().restartCauses['socket-error'] ?? 0), 2, JSON.stringify(stage.stats().restartCauses));
    // The stage's lock and the running server's socket are there (servers listen on a Unix socket in the spool dir); nothing else.
    const left = readdirSync(spool);
    assert.deepEqual(left.filter((name) => !name.endsWith('.sock')), ['.lock'], 'no output file of the killed servers is left in the spool dir');
    assert.deepEqual(left.filter((name) => name.endsWith('.sock')), [`p0.t${/\.t(\d+)\./.exec(String((await stage.status())[0]!.uniq))![1]}.3.sock`], 'only the third (running) server\'s socket: the killed ones\' are removed');
  } finally {
    await stage.close();
  }
});

test('a live stage in another PID namespace keeps its spool dir: liveness is its lock, not its PID', async () => {
  // A directory named after a PID that runs nowhere here, whose lock is held (as by a stage in another
  // container sharing TMPDIR), and one whose lock file nobody holds: both lock files older than the grace.
  const deadPid = spawnSync('true').pid!;
  const held = join(tmp, `pystage-${deadPid}-h0LdEr`);
  const free = join(tmp, `pystage-${deadPid}-fR3e0n`);
  for (const dir of [held, free]) {
    mkdirSync(dir);
    writeFileSync(join(dir, 'out-1-x.json'), 'x');
    writeFileSync(join(dir, '.lock'), '');
    utimesSync(join(dir, '.lock'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  }
  const holder = spawn('flock', ['--shared', join(held, '.lock'), 'sleep', '60'], { stdio: 'ignore', detached: true });
  try {
    // Holding: flock has taken the lock once a probe for it fails.
    for (let i = 0; i < 100 && spawnSync('flock', ['--exclusive', '--nonblock', join(held, '.lock'), 'true']).status === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'e', file: 'echo.py' }] });
    await stage.close();
    assert.equal(existsSync(held), true, 'a directory whose lock is held is kept, though no process has its PID');
    assert.equal(existsSync(free), false, 'a directory whose lock nobody holds is removed');
  } finally {
    process.kill(-holder.pid!, 'SIGKILL');
  }
  await new Promise((r) => holder.once('exit', r));
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'e', file: 'echo.py' }] });
  await stage.close();
  assert.equal(existsSync(held), false, 'once its holder is gone, the directory is removed');
});
