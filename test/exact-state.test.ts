/**
 * Exactness of the partition state: a message's state writes commit only once everything that can
 * still fail for it has succeeded (encoding its output, writing its spool file), and a reply that
 * arrives but cannot be used (its file is gone, it cannot be mapped) changes no state anywhere: not in
 * the worker, not in the main thread's mirror, not in the server (restored, the requests after it
 * run again). Real servers, fixture test/fixtures/models/exact_counter.py places each fault.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createStage, type Stage, type StageOutput, type StageRecord } from '../src/index.js';
import { collect } from './support/collect.js';
import { jsonLines, runCli } from './support/cli-runner.js';
import { fixtures } from './support/paths.js';
import { serverPids, workerThreads } from './support/stage-faults.js';
import { tempDir } from './support/temp-dirs.js';
import { waitFor } from './support/wait-for.js';
import { stageEngine } from '../src/engine/stage-internals.js';

/** Each record as its count (an output) or its error code and type. */
function view(records: StageRecord[]): (number | string)[] {
  return records.map((r) => (r.kind === 'output' ? ((r as StageOutput).output as { n: number }).n : `${r.error.code}/${r.error.type ?? ''}`));
}

async function counterStage(extra: Record<string, unknown> = {}): Promise<Stage> {
  return createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'c', file: 'exact_counter.py' }], ...extra });
}

test('the issue\'s counter: n=1, an error for the unencodable output (a lone surrogate), then n=2, not 3 (CLI)', async () => {
  const dir = tempDir('pystage-exact-');
  const model = join(dir, 'counter.py');
  writeFileSync(model, [
    'from pystage import Model',
    'class Counter(Model):',
    '    def execute(self, msg):',
    '        k = msg["key"]',
    '        n = self.context.state.get(k, 0) + 1',
    '        self.context.state[k] = n',
    '        return {"n": n, "s": msg.get("s")}',
    '',
  ].join('\n'));
  const input = ['{"key":"a","s":"x"}', '{"key":"a","s":"\\ud800"}', '{"key":"a","s":"y"}', ''].join('\n');
  const result = await runCli(['run', '--model', `c=${model}`, '--partitions', '1', '--log-level', 'silent'], input);
  assert.equal(result.code, 0, result.stderr);
  const lines = jsonLines(result.stdout);
  assert.deepEqual(lines.filter((l) => l.output).map((l) => [l.offset, l.output.n]), [[0, 1], [2, 2]]);
  // Error records go to stderr, beside the log and the summary.
  const failed = result.stderr.split('\n').filter((l) => l.startsWith('{"offset"')).map((l) => JSON.parse(l))[0];
  assert.equal(failed?.offset, 1);
  assert.equal(failed?.error.type, 'BadModelOutput');
  assert.match(failed?.error.message, /surrogates not allowed/);
});

test('an output beyond Python\'s int digit limit, or NaN, fails its message and keeps the state as it was', async () => {
  const stage = await counterStage();
  try {
    const records = await collect(stage.process([{ key: 'a' }, { key: 'a', huge: true }, { key: 'a' }, { key: 'a', nan: true }, { key: 'a' }]));
    assert.deepEqual(view(records), [1, 'PYSTAGE_MODEL_EXECUTION/BadModelOutput', 2, 'PYSTAGE_MODEL_EXECUTION/BadModelOutput', 3]);
    assert.match((records[1] as { error: { message: string } }).error.message, /4300|digits/);
    assert.deepEqual(stage.state(0), { c: { a: 3 } });
  } finally {
    await stage.close();
  }
});

test('a spool file that cannot be written (ENOSPC) fails its message and keeps the state as it was', async () => {
  const stage = await counterStage({ inlineLimit: 64 * 1024 });
  try {
    const blob = 100_000;
    const records = await collect(stage.process([{ key: 'a' }, { key: 'a', blob, fault: 'disk-full' }, { key: 'a', blob }, { key: 'a' }]));
    assert.deepEqual(view(records), [1, 'PYSTAGE_MODEL_EXECUTION/SpoolWriteError', 2, 3]);
    assert.match((records[1] as { error: { message: string } }).error.message, /No space left on device/);
    assert.equal(((records[2] as StageOutput).output as { blob: string }).blob.length, blob);
    assert.deepEqual(stage.state(0), { c: { a: 3 } });
  } finally {
    await stage.close();
  }
});

/** After a fault: the worker's state (a killed server is restored from it) and the mirror (a new thread starts from it) agree. */
async function assertWorkerAndMirrorAt(stage: Stage, n: number): Promise<void> {
  assert.deepEqual(stage.state(0), { c: { a: n } });
  const [pid] = serverPids(stage);
  const before = stage.stats().restarts;
  process.kill(pid!, 'SIGKILL');
  await waitFor('the server to be replaced', () => serverPids(stage).some((p) => p !== pid));
  assert.deepEqual(view(await collect(stage.process([{ key: 'a' }]))), [n + 1], 'the restarted server was restored from the worker');
  assert.equal(stage.stats().restarts, before + 1);
  await workerThreads(stage)[0]![0]!.terminate();
  assert.deepEqual(view(await collect(stage.process([{ key: 'a' }]))), [n + 2], 'the new worker thread started from the mirror');
  assert.equal((stageEngine(stage) as unknown as { lanes: { threadReplacements: number }[] }).lanes[0]!.threadReplacements, 1);
}

for (const [fault, what] of [['file-lost', 'whose output file the worker cannot read'], ['bad-reply', 'that cannot be mapped']] as const) {
  test(`a reply ${what} fails its batch and changes no state; the batches after it run again on a restored server`, async () => {
    // One message per batch, four in flight: the batches after the faulty one have their replies in hand
    // (computed on a server that had its writes) and must run again.
    const stage = await counterStage({ maxBatch: 1, inlineLimit: 64 * 1024 });
    try {
      const input = [{ key: 'a' }, { key: 'a', fault, blob: 100_000 }, { key: 'a' }, { key: 'a' }, { key: 'a' }, { key: 'a' }];
      const records = await collect(stage.process(input));
      assert.deepEqual(view(records), [1, 'PYSTAGE_UNUSABLE_REPLY/', 2, 3, 4, 5]);
      const message = (records[1] as { error: { message: string } }).error.message;
      assert.match(message, fault === 'file-lost' ? /ENOENT/ : /batch items/);
      // The server lived: the worker reconnected and restored it (no restart).
      assert.equal(stage.stats().restarts, 0);
      await assertWorkerAndMirrorAt(stage, 5);
    } finally {
      await stage.close();
    }
  });
}

test('a state near maxStateBytes of keys that grow six-fold in JSON is counted as sent and restored after a SIGKILL, in several frames', async () => {
  const maxFrameBytes = 2 * 1024 * 1024;
  const maxStateBytes = 1024 * 1024;
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxFrameBytes, maxStateBytes, maxBatchBytes: 512 * 1024, inlineLimit: 512 * 1024,
    models: [{ name: 'e', file: 'escape_keys.py' }],
  });
  try {
    const fills = await collect(stage.process(Array.from({ length: 12 }, (_, m) => ({ from: m * 20, count: 20 }))));
    const outputs = fills.map((r) => (r as StageOutput).output as { written: number; full: boolean });
    assert.ok(outputs.some((o) => o.full), 'the limit refused a write');
    const written = outputs.reduce((sum, o) => sum + o.written, 0);
    // What the keys take as JSON, counted here from their definition: 1,000 six-byte escapes and the digits.
    let wire = 0;
    for (let i = 0; i < written; i++) wire += 6 * 1000 + String(i).length + String(i).length;
    assert.ok(wire <= maxStateBytes && wire > 0.9 * maxStateBytes, `the keys and values take ${wire} bytes as JSON`);
    assert.ok(wire > maxFrameBytes / 4, 'more than one restore frame is needed');
    assert.ok(stage.stats().stateBytes <= maxStateBytes);
    const [pid] = serverPids(stage);
    process.kill(pid!, 'SIGKILL');
    await waitFor('the server to be replaced', () => serverPids(stage).some((p) => p !== pid));
    const [check] = await collect(stage.process([{ check: true }]));
    assert.equal(check!.kind, 'output', JSON.stringify(check));
    const seen = (check as StageOutput).output as { keys: number; intact: boolean; pid: number };
    assert.deepEqual([seen.keys, seen.intact], [written, true]);
    assert.notEqual(seen.pid, pid);
    assert.equal(stage.stats().restarts, 1);
  } finally {
    await stage.close();
  }
});

test('outputs of state-writing messages past the reply budget go to spool files as they commit; every output and count arrives', async () => {
  // A 1 MiB frame: replies carry up to 512 KiB of outputs; twelve 100 KB outputs of one batch cannot all fit.
  const stage = await counterStage({ maxFrameBytes: 1024 * 1024, inlineLimit: 256 * 1024, maxBatchBytes: 256 * 1024, maxStateBytes: 256 * 1024 });
  try {
    const blob = 100_000;
    const records = await collect(stage.process(Array.from({ length: 12 }, () => ({ key: 'a', blob }))));
    assert.deepEqual(view(records), Array.from({ length: 12 }, (_, i) => i + 1));
    for (const r of records) assert.equal(((r as StageOutput).output as { blob: string }).blob.length, blob);
    assert.deepEqual(stage.state(0), { c: { a: 12 } });
  } finally {
    await stage.close();
  }
});
