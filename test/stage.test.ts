/** The embeddable API against real Python servers: outputs, metadata commands, crashes, shutdown. */
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { collect } from './support/collect.js';
import {
  createStage, ModelLoadError, PythonStartError,
  type StageOutput, type StageRecord,
} from '../src/index.js';
import { isAlive, waitGone } from './support/processes.js';
import { fixtures } from './support/paths.js';

async function serverPids(stage: { status(): Promise<{ serverPid: number | null }[]> }): Promise<number[]> {
  return (await stage.status()).map((s) => s.serverPid!);
}

describe('createStage', () => {
  test('process() yields typed outputs and errors; close() stops every Python server', async () => {
    const stage = await createStage({
      partitions: 2, pythonPath: fixtures, logLevel: 'silent',
      models: [{ name: 'add', file: 'arith.py', options: { op: 'add' } }, { name: 'h', file: 'hostile.py' }],
    });
    const pids = await serverPids(stage);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(isAlive));
    const messages = [{ key: 'a', a: 1, b: 2, seq: 0 }, 'not an object', { key: 'b', a: 5, b: 5, seq: 2, fail: true }];
    const records = await collect(stage.process(messages));
    const outputs = records.filter((r): r is StageOutput => r.kind === 'output').map((r) => [r.offset, r.model, r.output]);
    assert.deepEqual(outputs.sort(), [[0, 'add', { r: 3, seq: 0 }], [0, 'h', { seq: 0, tag: 'v1', size: 0 }], [2, 'add', { r: 10, seq: 2 }]].sort());
    const errors = records.filter((r) => r.kind === 'error').map((r) => r.kind === 'error' && [r.offset, r.model, r.error.code]);
    assert.deepEqual(errors.sort(), [[1, null, 'PYSTAGE_BAD_INPUT'], [2, 'h', 'PYSTAGE_MODEL_EXECUTION']].sort());
    const status = await stage.status();
    assert.ok(status.every((s) => typeof s.uniq === 'string' && s.uniq.includes(stage.id)));
    await stage.close();
    assert.ok(await waitGone(pids, 3000), 'servers exit on close');
  });

  test('add, update and remove models while messages flow', async () => {
    const stage = await createStage({
      partitions: 2, pythonPath: fixtures, logLevel: 'silent',
      models: [{ name: 'h', file: 'hostile.py', options: { tag: 'v1' } }],
    });
    let phase = 0;
    async function* feed() {
      for (let i = 0; i < 3000; i++) {
        if (i === 1000) { await stage.updateModel({ name: 'h', file: 'hostile.py', options: { tag: 'v2' } }); phase = 1; }
        if (i === 2000) { await stage.addModel({ name: 'add', file: 'arith.py', options: { op: 'add' } }); phase = 2; }
        yield { key: `k${i % 10}`, seq: i, a: i, b: 1, phase };
      }
      await stage.removeModel('h');
      yield { key: 'last', seq: 3000, a: 1, b: 1 };
    }
    const records = await collect(stage.process(feed()));
    assert.ok(records.every((r) => r.kind === 'output'), JSON.stringify(records.find((r) => r.kind === 'error')));
    const outputs = records as StageOutput[];
    for (const o of outputs.filter((r) => r.model === 'h')) {
      assert.equal(o.output.tag, (o.output.seq as number) < 1000 ? 'v1' : 'v2', `seq ${o.output.seq}`);
    }
    assert.equal(outputs.filter((r) => r.model === 'h').length, 3000);
    assert.deepEqual(outputs.filter((r) => r.model === 'add').map((r) => r.offset).sort((a, b) => a - b),
      [...Array.from({ length: 1000 }, (_, k) => 2000 + k), 3000]);
    await assert.rejects(stage.updateModel({ name: 'nope', file: 'hostile.py' }), ModelLoadError);
    await assert.rejects(stage.addModel({ name: 'bad', file: 'no_such.py' }), ModelLoadError);
    await stage.close();
  });

  test('SIGKILL of a Python server mid-stream loses and duplicates nothing', async () => {
    const stage = await createStage({
      partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'add', file: 'arith.py' }],
    });
    const [victim] = await serverPids(stage);
    const n = 60_000;
    async function* feed() {
      for (let i = 0; i < n; i++) {
        if (i === 20_000) process.kill(victim!, 'SIGKILL');
        yield { key: `k${i % 101}`, a: i, b: 3, seq: i };
      }
    }
    const records = await collect(stage.process(feed()));
    const offsets = new Set<number>();
    for (const r of records) {
      assert.equal(r.kind, 'output', JSON.stringify(r));
      const o = r as StageOutput;
      assert.ok(!offsets.has(o.offset), `duplicate ${o.offset}`);
      offsets.add(o.offset);
      assert.deepEqual(o.output, { r: o.offset + 3, seq: o.offset });
    }
    assert.equal(offsets.size, n);
    assert.ok(stage.stats().restarts >= 1, 'the killed server was restarted');
    assert.ok(!isAlive(victim!));
    const pids = await serverPids(stage);
    await stage.close();
    assert.ok(await waitGone(pids, 3000));
  });

  test('stream() works in stream.pipeline()', async () => {
    const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'add', file: 'arith.py' }] });
    const got: number[] = [];
    await pipeline(
      Readable.from(Array.from({ length: 100 }, (_, i) => ({ key: i, a: i, b: i }))),
      stage.stream(),
      new Writable({ objectMode: true, write(r: StageOutput, _e, cb) { got.push(r.output.r as number); cb(); } }),
    );
    assert.deepEqual(got.sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => 2 * i));
    await stage.close();
  });

  test('stream() fed bytes (a JSON-lines file) runs every line, as the CLI reads stdin; a Buffer given to process() is a bad input', async () => {
    const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'add', file: 'arith.py' }] });
    const dir = mkdtempSync(join(tmpdir(), 'pystage-stream-'));
    try {
      const file = join(dir, 'in.jsonl');
      // 5,000 lines, one not JSON; a small highWaterMark splits lines across chunks.
      const lines = Array.from({ length: 5000 }, (_, i) => (i === 1234 ? 'not json' : JSON.stringify({ key: `k${i % 7}`, a: i, b: 1 })));
      writeFileSync(file, lines.join('\n') + '\n');
      const got: { offset: number; key: unknown; r?: unknown; code?: string }[] = [];
      await pipeline(
        createReadStream(file, { highWaterMark: 1000 }),
        stage.stream(),
        new Writable({ objectMode: true, write(r: StageRecord, _e, cb) {
          got.push(r.kind === 'output' ? { offset: r.offset, key: r.key, r: r.output.r } : { offset: r.offset, key: r.key, code: r.error.code });
          cb();
        } }),
      );
      got.sort((x, y) => x.offset - y.offset);
      assert.equal(got.length, 5000);
      assert.deepEqual(got[1234], { offset: 1234, key: null, code: 'PYSTAGE_BAD_INPUT' });
      for (const [i, record] of got.entries()) if (i !== 1234) assert.deepEqual(record, { offset: i, key: `k${i % 7}`, r: i + 1 });
      // Strings are bytes too.
      const text = await collect(Readable.from(['{"key":1,"a":2,', '"b":3}\n{"key":2,"a":1,"b":1}']).pipe(stage.stream()) as AsyncIterable<StageRecord>);
      assert.deepEqual(text.map((r) => r.kind === 'output' && [r.offset, r.key, r.output.r]).sort(), [[0, 1, 5], [1, 2, 2]]);
      const bytes = await collect(stage.process([{ key: 'a', a: 1, b: 1 }, Buffer.from('{"key":"b","a":1,"b":1}')]));
      assert.equal(bytes.length, 2);
      const refused = bytes.find((r) => r.kind === 'error');
      assert.ok(refused?.kind === 'error' && refused.error.code === 'PYSTAGE_BAD_INPUT' && /got bytes/.test(refused.error.message), JSON.stringify(refused));
      assert.equal(refused.input, '{"key":"b","a":1,"b":1}');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await stage.close();
    }
  });

  test('close() returns when a reader stopped early, or while the source is quiet; unserialisable messages are errors', async () => {
    const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', maxInFlight: 64, models: [{ name: 'add', file: 'arith.py' }] });
    let read = 0;
    for await (const r of stage.process(Array.from({ length: 20_000 }, (_, i) => ({ key: i, a: i, b: 1 })))) {
      assert.equal(r.kind, 'output');
      if (++read === 10) break;
    }
    const circular: Record<string, unknown> = { key: 'c' };
    circular.self = circular;
    const odd = await collect(stage.process([{ key: 'b', a: 1n, b: 2 }, circular, { key: 'ok', a: 1, b: 2 }]));
    assert.deepEqual(odd.map((r) => [r.offset, r.kind === 'error' ? r.error.code : r.output]),
      [[0, 'PYSTAGE_BAD_INPUT'], [1, 'PYSTAGE_BAD_INPUT'], [2, { r: 3, seq: null }]]);
    const quiet = new PassThrough({ objectMode: true });
    quiet.write({ key: 'q', a: 2, b: 2 });
    const reading = collect(stage.process(quiet));
    await new Promise((r) => setTimeout(r, 300));
    await stage.close();
    const fromQuiet = await reading;
    assert.deepEqual(fromQuiet.map((r) => r.kind === 'output' && r.output.r), [4]);
  });

  test('start failures are typed and leave no process behind', async () => {
    await assert.rejects(
      createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', python: '/nonexistent/python3', models: [{ name: 'a', file: 'arith.py' }] }),
      PythonStartError,
    );
    await assert.rejects(
      createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'a', file: 'arith.py', options: { op: 'pow' } }] }),
      (err: unknown) => err instanceof ModelLoadError && /unknown op 'pow'/.test(err.message),
    );
  });
});
