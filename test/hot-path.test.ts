/**
 * The data path against real Python servers: bytes pass through exactly, slow models are not
 * taken for hung, big inputs and outputs never fail for their size, one bad message fails alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStage, type StageOutput } from '../src/index.js';
import { jsonLines, runCli, summaryOf } from './support/cli-runner.js';
import { collect } from './support/collect.js';
import { fixtures } from './support/paths.js';

const model = (name: string, file: string) => ['run', '--python-path', fixtures, '--model', `${name}=${fixtures}${file}`];

describe('bytes pass through untouched', () => {
  test('integers beyond 2^53 in messages, outputs and keys come out digit for digit (CLI)', async () => {
    const input = [
      '{"key":12345678901234567890123,"v":9007199254740993,"w":18446744073709551615,"s":"\\u00e9\\n"}',
      '{"key":"k","v":0.1000000000000000055511151231257827}',
    ].join('\n');
    const r = await runCli([...model('echo', 'echo.py'), '--partitions', '1'], input);
    assert.equal(r.code, 0, r.stderr);
    // Python's json.dumps of what it parsed: big integers stay exact; floats are Python's own repr.
    assert.equal(r.stdout, [
      '{"offset":0,"key":12345678901234567890123,"partition":0,"model":"echo","output":{"key":12345678901234567890123,"v":9007199254740993,"w":18446744073709551615,"s":"é\\n"}}',
      '{"offset":1,"key":"k","partition":0,"model":"echo","output":{"key":"k","v":0.1}}',
      '',
    ].join('\n'));
  });

  test('the API keeps the exact text in `json` and parses `output` on demand', async () => {
    const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'echo', file: 'echo.py' }] });
    try {
      const records = await collect(stage.process([{ key: 'a', big: 2n ** 70n }, { key: 'a', n: 1 }]));
      const [bad] = records;
      assert.ok(bad?.kind === 'error', 'a BigInt is not JSON: a clear error for that message');
      assert.equal(bad.error.code, 'PYSTAGE_BAD_INPUT');
      const out = records[1] as StageOutput;
      assert.equal(out.json, '{"key":"a","n":1}');
      assert.deepEqual(out.output, { key: 'a', n: 1 });
    } finally {
      await stage.close();
    }
  });
});

describe('one bad message fails alone', () => {
  test('a message nested 5,000 deep is one PYSTAGE_BAD_INPUT; its batch neighbours run; no restart', async () => {
    const deep = '{"key":"d","a":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5000) + '}';
    const lines = [];
    for (let i = 0; i < 50; i++) lines.push(i === 25 ? deep : `{"key":"k${i % 3}","a":${i},"b":1}`);
    const r = await runCli(['run', '--model', 'add=py/models/add.py', '--partitions', '1'], lines.join('\n') + '\n');
    assert.equal(r.code, 0, r.stderr);
    const outputs = jsonLines(r.stdout);
    assert.equal(outputs.length, 49);
    const errors = jsonLines(r.stderr).filter((l) => 'error' in l && 'offset' in l);
    assert.deepEqual(errors.map((e) => [e.offset, e.error.code]), [[25, 'PYSTAGE_BAD_INPUT']]);
    assert.match(errors[0]!.error.message, /nested too deeply|recursion/i);
    const summary = summaryOf(r.stderr);
    assert.equal(summary.restarts, 0);
  });

  test('a line that is not valid JSON fails alone, whether the scan or the model server finds it', async () => {
    const input = '{"key":"a","a":1,"b":1}\n{"key":"a","a":tru}\n{"key":"a","a":[}]}\n{"key":"a","a":2,"b":2}\n';
    const r = await runCli(['run', '--model', 'add=py/models/add.py', '--partitions', '1'], input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(jsonLines(r.stdout).map((o) => [o.offset, o.output.sum]), [[0, 2], [3, 4]]);
    const errors = jsonLines(r.stderr).filter((l) => 'error' in l && 'offset' in l);
    // The first is found by the line scan on the main thread, the second by Python's parser: both precise.
    assert.deepEqual(errors.map((e) => [e.offset, e.error.code, e.input]).sort(), [
      [1, 'PYSTAGE_BAD_INPUT', '{"key":"a","a":tru}'], [2, 'PYSTAGE_BAD_INPUT', '{"key":"a","a":[}]}'],
    ]);
  });
});

describe('slow but progressing is not hung', () => {
  test('a 25 ms/message model fed at full speed with a 400 ms deadline: no restart, each message run once', async () => {
    const lines = Array.from({ length: 120 }, (_, i) => `{"key":"k","seq":${i}}`).join('\n');
    const r = await runCli([...model('slow', 'slow.py'), '--model-options', 'slow={"ms":25}', '--partitions', '1', '--execute-timeout', '400'], lines);
    assert.equal(r.code, 0, r.stderr);
    const summary = summaryOf(r.stderr);
    assert.equal(summary.restarts, 0);
    assert.equal(summary.errors, 0);
    const outputs = jsonLines(r.stdout).map((o) => o.output);
    // n counts executions in the one server: 1..120 in message order means nothing ran twice.
    assert.deepEqual(outputs.map((o) => [o.seq, o.n]), Array.from({ length: 120 }, (_, i) => [i, i + 1]));
  });
});

describe('no valid input fails for its size', () => {
  test('200 outputs of 110 KB: all emitted exactly, no restart, no frame error', async () => {
    const blob = 'x'.repeat(110 * 1024);
    const lines = Array.from({ length: 200 }, (_, i) => `{"key":"k${i % 4}","blob":"${blob}","i":${i}}`).join('\n');
    const r = await runCli([...model('echo', 'echo_blob.py'), '--partitions', '2'], lines);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const outputs = jsonLines(r.stdout);
    assert.equal(outputs.length, 200);
    assert.ok(outputs.every((o) => o.output.length === blob.length && o.output.blob === blob));
    const summary = summaryOf(r.stderr);
    assert.equal(summary.restarts, 0);
    // A rejected frame costs a reconnect to the same server, not a restart: the summary counts those apart.
    assert.equal(summary.reconnects, 0);
    assert.equal(summary.errors, 0);
  });

  test('1,000 inputs of 70 KB through the API: every one answered, none an error', async () => {
    const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'h', file: 'hostile.py' }] });
    try {
      const blob = 'y'.repeat(70 * 1024);
      const records = await collect(stage.process(Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 7}`, seq: i, blob }))));
      assert.equal(records.length, 1000);
      assert.ok(records.every((r) => r.kind === 'output' && (r.output as { size: number }).size === blob.length));
      assert.deepEqual(stage.stats().restartCauses, {});
      assert.deepEqual(stage.stats().reconnectCauses, {}, 'no frame was rejected');
    } finally {
      await stage.close();
    }
  });
});
