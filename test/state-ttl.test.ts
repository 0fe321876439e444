/**
 * State TTL: `self.context.state.set(key, value, ttl=S)` and a per-model default (`stateTtlMs`,
 * `--state-ttl NAME=SECONDS`). An expired key reads as absent and leaves memory (server, worker, the
 * main thread's mirror); expiry is judged at the time of the message's batch, so a message re-executed
 * after a SIGKILL sees the state its first run saw. Real servers (test/fixtures/models/ttl_counter.py).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createStage, type Stage, type StageOutput, type StageRecord } from '../src/index.js';
import { collect } from './support/collect.js';
import { runCli } from './support/cli-runner.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function counts(records: StageRecord[]): number[] {
  return records.map((r) => {
    assert.equal(r.kind, 'output', JSON.stringify(r));
    return ((r as StageOutput).output as { n: number }).n;
  });
}

async function ttlStage(stateTtlMs?: number): Promise<Stage> {
  return createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent',
    models: [{ name: 't', file: 'ttl_counter.py', ...(stateTtlMs === undefined ? {} : { stateTtlMs }) }],
  });
}

test('a key past its TTL (the model\'s default, or its own ttl) reads as absent and leaves the server, worker and mirror', async () => {
  const stage = await ttlStage(200);
  try {
    // "a" gets the default 200 ms, "k" an hour of its own.
    assert.deepEqual(counts(await collect(stage.process([{ key: 'a' }, { key: 'k', ttl: 3600 }]))), [1, 1]);
    assert.deepEqual(stage.state(0), { t: { a: 1, k: 1 } });
    await sleep(400); // at least the TTL: a lower bound, never an upper one
    // The mirror already reads "a" as absent, though it still holds it until the server removes it.
    assert.deepEqual(stage.state(0), { t: { k: 1 } });
    assert.equal(stage.stats().stateKeys, 2);
    // The next batch's time is past a's expiry: the server removes it first (a change the worker and mirror apply).
    assert.deepEqual(counts(await collect(stage.process([{ key: 'b', ttl: 3600 }, { key: 'k', ttl: 3600 }]))), [1, 2]);
    assert.equal(stage.stats().stateKeys, 2, '"a" left the mirror\'s memory');
    assert.deepEqual(stage.state(0), { t: { k: 2, b: 1 } });
    assert.deepEqual(counts(await collect(stage.process([{ key: 'a' }]))), [1], 'an expired counter starts again');
  } finally {
    await stage.close();
  }
});

test('a message re-executed after its server was SIGKILLed sees the state its first run saw, though the TTL passed meanwhile', async () => {
  const stage = await ttlStage();
  const marker = join(tempDir('pystage-ttl-'), 'died');
  try {
    // "a" lives 3 s from the first batch's time. The second batch comes right after: its message reads n=1,
    // sleeps 3.5 s and kills its server. Run again, it is judged at its batch's time, not the clock's: "a"
    // is still there (judged by the clock, it would have expired and the count would start again at 1).
    assert.deepEqual(counts(await collect(stage.process([{ key: 'a', ttl: 3 }]))), [1]);
    const records = await collect(stage.process([{ key: 'a', ttl: 3, die_after: marker, sleep: 3.5 }]));
    assert.deepEqual(counts(records), [2]);
    assert.equal(stage.stats().restarts, 1, 'the server was killed and replaced once');
  } finally {
    await stage.close();
  }
});

test('stateTtlMs and --state-ttl are validated', async () => {
  await assert.rejects(ttlStage(0), { code: 'PYSTAGE_INVALID_OPTION', message: /stateTtlMs of model "t"/ });
  await assert.rejects(ttlStage(1.5), { code: 'PYSTAGE_INVALID_OPTION' });
  const bad = await runCli(['run', '--model', `t=${join(fixtures, 'ttl_counter.py')}`, '--state-ttl', 't=soon'], '');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--state-ttl t: SECONDS must be a positive number/);
  const unknown = await runCli(['run', '--model', `t=${join(fixtures, 'ttl_counter.py')}`, '--state-ttl', 'x=5'], '');
  assert.equal(unknown.code, 2);
  const ok = await runCli(['run', '--model', `t=${join(fixtures, 'ttl_counter.py')}`, '--state-ttl', 't=60', '--partitions', '1', '--log-level', 'silent'],
    '{"key":"a"}\n{"key":"a"}\n');
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.stdout.trim().split('\n').map((l) => JSON.parse(l).output.n), [1, 2]);
});
