/**
 * self.context.state with real servers: a per-key counter stays exactly 1, 2, 3 … per key while servers
 * are SIGKILLed and worker threads die; failed messages leave the state alone; the state's limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type Stage, type StageOutput, type StageRecord } from '../src/index.js';
import { collect } from './support/collect.js';
import { fixtures } from './support/paths.js';
import { killStorm } from './support/kill-storm.js';
import { closeLeavingNoServer, workerThreads } from './support/stage-faults.js';
import { waitFor } from './support/wait-for.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `rounds` rounds of `perRound` messages over `keys` keys, a pause between rounds (so kills land mid-run). */
async function* paced(rounds: number, perRound: number, keys: number, pauseMs: number): AsyncGenerator<Record<string, unknown>> {
  let i = 0;
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < perRound; k++, i++) yield { key: `k${i % keys}`, seq: i };
    await sleep(pauseMs);
  }
}

/** Check every output is the next count of its key; returns the final count per key. */
async function checkCounts(records: AsyncIterable<StageRecord>, expected: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let outputs = 0;
  for await (const r of records) {
    assert.equal(r.kind, 'output', JSON.stringify(r));
    const o = (r as StageOutput).output as { key: string; n: number };
    const want = (counts.get(o.key) ?? 0) + 1;
    assert.equal(o.n, want, `key ${o.key}: count ${o.n} where ${want} was due (offset ${r.offset})`);
    counts.set(o.key, want);
    outputs++;
  }
  assert.equal(outputs, expected);
  return counts;
}

function stateCounts(stage: Stage): Map<string, number> {
  const all = new Map<string, number>();
  for (let p = 0; p < stage.partitions; p++) {
    for (const [key, n] of Object.entries((stage.state(p).count ?? {}) as Record<string, unknown>)) all.set(key, n as number);
  }
  return all;
}

test('a per-key counter in state stays exact while servers are SIGKILLed again and again', async () => {
  const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'count', file: 'keyed_counter.py' }] });
  const storm = killStorm(stage, 120);
  let counts: Map<string, number>;
  let kills: number;
  try {
    counts = await checkCounts(stage.process(paced(30, 400, 61, 60)), 12_000);
  } finally {
    kills = await storm.stop();
  }
  assert.ok(kills >= 3, `the storm killed ${kills} servers`);
  assert.ok(stage.stats().restarts >= 3);
  // The host's copy is the state as of the last output, and a new message continues from it.
  assert.deepEqual(stateCounts(stage), counts);
  const more = await collect(stage.process([{ key: 'k0' }]));
  assert.equal(((more[0] as StageOutput).output as { n: number }).n, counts.get('k0')! + 1);
  await closeLeavingNoServer(stage);
});

test('the state survives the death of a worker thread (restored from the main thread)', async () => {
  const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'count', file: 'keyed_counter.py' }] });
  let deaths = 0;
  let done = false;
  // Each death waits for the replacement thread's server before the next: a lane resends a task once, so
  // two deaths of one partition's thread within one start (a loaded machine) fail its messages by design.
  const killer = (async () => {
    while (!done && deaths < 3) {
      await new Promise((r) => setTimeout(r, 800));
      const partition = deaths % 2;
      const thread = workerThreads(stage)[partition]![0];
      if (done || thread === undefined) continue;
      const before = (await stage.status())[partition]!.serverPid;
      deaths++;
      await thread.terminate();
      await waitFor(`partition ${partition}'s replacement server`, async () => {
        const pid = (await stage.status())[partition]!.serverPid;
        return pid !== null && pid !== before;
      }, 60_000);
    }
  })();
  let counts: Map<string, number>;
  try {
    counts = await checkCounts(stage.process(paced(40, 100, 23, 100)), 4_000);
  } finally {
    done = true;
    await killer;
  }
  assert.ok(deaths >= 2, `${deaths} worker threads terminated`);
  assert.deepEqual(stateCounts(stage), counts);
  await closeLeavingNoServer(stage);
});

test('a failed message leaves the state as it found it; a write past maxStateBytes fails its message alone', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxStateBytes: 1000, models: [{ name: 'count', file: 'keyed_counter.py' }] });
  try {
    const records = await collect(stage.process([
      { key: 'a' }, { key: 'a', fail: true }, { key: 'a' }, { key: 'b', blob: 2000 }, { key: 'b' }, { key: 'a', blob: 100 },
    ]));
    const view = records.map((r) => (r.kind === 'output' ? ((r as StageOutput).output as { n: number }).n : r.error.type));
    assert.deepEqual(view, [1, 'ValueError', 2, 'StateFullError', 1, 3]);
    const failure = records[3]!;
    assert.ok(failure.kind === 'error' && /maxStateBytes/.test(failure.error.message), JSON.stringify(failure));
    assert.deepEqual(stage.state(0), { count: { a: 3, b: 1, 'a.blob': 'x'.repeat(100) } });
    const stats = stage.stats();
    assert.equal(stats.stateKeys, 3);
    assert.equal(stats.stateBytes, (1 + 1 + 8) + (1 + 1 + 8) + (6 + 102 + 8));
    assert.throws(() => stage.state(1), { code: 'PYSTAGE_INVALID_OPTION' });
  } finally {
    await stage.close();
  }
});

test('state is scoped to the model: two models never see each other\'s keys; removeModel drops it', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'one', file: 'keyed_counter.py' }, { name: 'two', file: 'keyed_counter.py' }] });
  try {
    const records = await collect(stage.process([{ key: 'a' }, { key: 'a' }]));
    assert.deepEqual(records.map((r) => [(r as StageOutput).model, ((r as StageOutput).output as { n: number }).n]), [['one', 1], ['two', 1], ['one', 2], ['two', 2]]);
    await stage.removeModel('two');
    assert.deepEqual(stage.state(0), { one: { a: 2 } });
    await stage.addModel({ name: 'two', file: 'keyed_counter.py' });
    const again = await collect(stage.process([{ key: 'a' }]));
    assert.deepEqual(again.map((r) => ((r as StageOutput).output as { n: number }).n), [3, 1]);
  } finally {
    await stage.close();
  }
});

test('messages over the inline limit (executeModel through a spool file) count in the same state, in order', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', inlineLimit: 2048, models: [{ name: 'count', file: 'keyed_counter.py' }] });
  try {
    const pad = 'p'.repeat(4096);
    const records = await collect(stage.process([{ key: 'a' }, { key: 'a', pad }, { key: 'a' }, { key: 'a', pad }, { key: 'a', pad, fail: true }, { key: 'a' }]));
    assert.deepEqual(records.map((r) => (r.kind === 'output' ? ((r as StageOutput).output as { n: number }).n : r.error.type)), [1, 2, 3, 4, 'ValueError', 5]);
    assert.deepEqual(stage.state(0), { count: { a: 5 } });
  } finally {
    await stage.close();
  }
});

test('after a reconnect to a live server (corrupt reply stream), the state is restored: counts stay exact', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 2000,
    models: [{ name: 'count', file: 'keyed_counter.py' }, { name: 'c', file: 'corrupting.py' }],
  });
  try {
    const counts = new Map<string, number>();
    let outputs = 0;
    for await (const r of stage.process(Array.from({ length: 3000 }, (_, i) => ({ key: `k${i % 7}`, seq: i })))) {
      assert.equal(r.kind, 'output', JSON.stringify(r));
      const o = r as StageOutput;
      outputs++;
      if (o.model !== 'count') continue;
      const { key, n } = o.output as { key: string; n: number };
      const want = (counts.get(key) ?? 0) + 1;
      assert.equal(n, want, `key ${key}: ${n} where ${want} was due`);
      counts.set(key, want);
    }
    assert.equal(outputs, 6000);
    // The server lived: it was a reconnect (restarts count new servers only), and it started from the host's state.
    assert.equal(stage.stats().restarts, 0);
    assert.deepEqual(stateCounts(stage), counts);
  } finally {
    await stage.close();
  }
});
