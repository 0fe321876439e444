/**
 * TTL across a restart: an entry's expiry is stored with it in the state dir, so a key that expired
 * while no stage ran reads as absent in the next run, and leaves the store; a key whose TTL has not
 * passed keeps its value. Real server, real LMDB store in a temporary folder.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { runCli } from './support/cli-runner.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';
import { storedState } from './support/durable-job.js';

const lines = (...msgs: object[]): string => msgs.map((m) => JSON.stringify(m)).join('\n') + '\n';
const outputs = (stdout: string): Record<string, number> =>
  Object.fromEntries(stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { output: { key: string; n: number } }).map((r) => [r.output.key, r.output.n]));

test('a key whose TTL passed between two runs on one state dir reads as absent and leaves the store; others keep their values', async () => {
  const dir = join(tempDir('pystage-ttl-'), 'state');
  const args = ['run', '--model', `t=${fixtures}ttl_counter.py`, '--partitions', '1', '--state-dir', dir];
  const first = await runCli(args, lines({ key: 'short', ttl: 1 }, { key: 'gone', ttl: 1 }, { key: 'long', ttl: 3600 }, { key: 'plain' }));
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(outputs(first.stdout), { short: 1, gone: 1, long: 1, plain: 1 });
  // (short and gone may already read as expired here on a slow machine: what follows does not depend on it.)
  const keys = (await storedState(dir)).map((l) => JSON.parse(l).key as string);
  assert.ok(keys.includes('long') && keys.includes('plain'), keys.join());
  // Past the 1 s TTL by the clock, with no stage running: only the stored expiry can tell.
  await sleep(1500);
  const second = await runCli(args, lines({ key: 'short' }, { key: 'long' }, { key: 'plain' }));
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(outputs(second.stdout), { short: 1, long: 2, plain: 2 }, 'short expired across the restart; long and plain kept their counts');
  const stored = Object.fromEntries((await storedState(dir)).map((l) => JSON.parse(l) as { key: string; value: number }).map((e) => [e.key, e.value]));
  assert.deepEqual(stored, { short: 1, long: 2, plain: 2 }, '"gone" expired and left the store');
});
