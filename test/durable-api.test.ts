/**
 * stateDir through the API, with the real server and a real LMDB store: `stage.checkpoint()` makes the
 * state as of the records taken durable while the stage runs; a new stage on the same dir starts with it;
 * the restore is reported (progress callback, Prometheus metric); removeModel removes the model's state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createStage, InvalidOptionError, type StageRecord } from '../src/index.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';
import { storedState } from './support/durable-job.js';

const counter = { name: 'c', file: 'keyed_counter.py' };

async function drain(records: AsyncIterable<StageRecord>): Promise<StageRecord[]> {
  const out: StageRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

test('stage.checkpoint() makes the state of every record taken durable while the stage runs; the next stage starts with it', async () => {
  const state = join(tempDir('pystage-api-state-'), 'state');
  // No periodic checkpoint within the test: only checkpoint() and close() write.
  const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', stateDir: state, checkpointIntervalMs: 86_400_000, models: [counter] });
  try {
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 3}`, i }));
    assert.equal((await drain(stage.process(messages))).length, 300);
    assert.deepEqual(await storedState(state), [], 'nothing stored before a checkpoint');
    await stage.checkpoint();
    // Read by another process while this stage still runs.
    assert.deepEqual((await storedState(state)).map((l) => [JSON.parse(l).key, JSON.parse(l).value]).sort(), [['k0', 100], ['k1', 100], ['k2', 100]]);
  } finally {
    await stage.close();
  }
  const progress: { keys: number; done: boolean }[] = [];
  const next = await createStage({
    partitions: 2, pythonPath: fixtures, logLevel: 'silent', stateDir: state, metricsPort: 0, models: [counter],
    onRestoreProgress: (p) => progress.push(p),
  });
  try {
    assert.deepEqual(progress.at(-1) && { keys: progress.at(-1)!.keys, done: progress.at(-1)!.done }, { keys: 3, done: true });
    const metrics = await (await fetch(next.metricsUrl!)).text();
    assert.match(metrics, /^pystage_state_restore_seconds \d/m);
    assert.match(metrics, /^pystage_state_restored_keys 3$/m);
    const [record] = await drain(next.process([{ key: 'k1', i: 0 }]));
    assert.equal(record!.kind, 'output');
    assert.equal((record as { output: Record<string, unknown> }).output.n, 101, 'the counter went on from the stored state');
    await next.removeModel('c');
  } finally {
    await next.close();
  }
  assert.deepEqual(await storedState(state), [], 'removeModel removed the model\'s stored state');
});

test('checkpoint() without stateDir is refused', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [counter] });
  try {
    await assert.rejects(stage.checkpoint(), InvalidOptionError);
  } finally {
    await stage.close();
  }
});
