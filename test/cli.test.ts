/** The CLI end to end: real node process, real Python servers, stdin to stdout. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { jsonLines, runCli, startCli, summaryOf } from './support/cli-runner.js';
import { waitGone } from './support/processes.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';

const twoModels = [
  'run', '--python-path', fixtures,
  '--model', `add=${fixtures}arith.py`, '--model-options', 'add={"op":"add"}',
  '--model', `mul=${fixtures}arith.py:Arith`, '--model-options', 'mul={"op":"mul"}',
];

function lines(n: number, make: (i: number) => object): string {
  let text = '';
  for (let i = 0; i < n; i++) text += JSON.stringify(make(i)) + '\n';
  return text;
}

describe('pystage run', () => {
  test('100,000 messages through 2 models on 4 partitions: every output right, per-partition order kept', async () => {
    const n = 100_000;
    const input = lines(n, (i) => ({ key: `acct-${i % 1000}`, a: i, b: i % 7, seq: i }));
    const result = await runCli([...twoModels, '--partitions', '4'], input);
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const outputs = jsonLines(result.stdout);
    assert.equal(outputs.length, 2 * n);
    const seen = new Set<string>();
    const partitionOfKey = new Map<string, number>();
    const lastOffset = new Map<string, number>();
    for (const o of outputs) {
      const id = `${o.offset}/${o.model}`;
      assert.ok(!seen.has(id), `duplicate output ${id}`);
      seen.add(id);
      const i = o.offset as number;
      assert.equal(o.key, `acct-${i % 1000}`);
      assert.deepEqual(o.output, { r: o.model === 'add' ? i + (i % 7) : i * (i % 7), seq: i });
      if (!partitionOfKey.has(o.key)) partitionOfKey.set(o.key, o.partition);
      assert.equal(o.partition, partitionOfKey.get(o.key), `key ${o.key} seen in two partitions`);
      const laneId = `${o.partition}/${o.model}`;
      assert.ok((lastOffset.get(laneId) ?? -1) < i, `partition ${o.partition} emitted offset ${i} after a later one`);
      lastOffset.set(laneId, i);
    }
    assert.equal(new Set(partitionOfKey.values()).size, 4, 'all 4 partitions used');
    const summary = summaryOf(result.stderr);
    assert.equal(summary.in, n);
    assert.equal(summary.out, 2 * n);
    assert.equal(summary.errors, 0);
  });

  test('per-key order: running totals per key match a sequential computation', async () => {
    const n = 20_000;
    const input = lines(n, (i) => ({ key: `k${(i * 7919) % 50}`, a: (i % 13) + 1, seq: i }));
    const result = await runCli(['run', '--python-path', fixtures, '--model', `total=${fixtures}running_total.py`, '--partitions', '3'], input);
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const expected = new Map<number, number>();
    const totals = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const key = `k${(i * 7919) % 50}`;
      const t = (totals.get(key) ?? 0) + (i % 13) + 1;
      totals.set(key, t);
      expected.set(i, t);
    }
    const outputs = jsonLines(result.stdout);
    assert.equal(outputs.length, n);
    for (const o of outputs) assert.equal(o.output.total, expected.get(o.offset), `offset ${o.offset}`);
  });

  test('--ordered emits outputs in global input order, models in the order given', async () => {
    const n = 5_000;
    const input = lines(n, (i) => ({ key: `k${i % 17}`, a: i, b: 2, seq: i }));
    const result = await runCli([...twoModels, '--partitions', '3', '--ordered'], input);
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const outputs = jsonLines(result.stdout);
    assert.equal(outputs.length, 2 * n);
    outputs.forEach((o, k) => {
      assert.equal(o.offset, Math.floor(k / 2));
      assert.equal(o.model, k % 2 === 0 ? 'add' : 'mul');
    });
  });

  test('--route sends a message only to the model its field names; a miss is an error line', async () => {
    const dir = tempDir('pystage-test-');
    const errorsFile = join(dir, 'errors.jsonl');
    const input = [
      { key: 'a', a: 2, b: 3, to: 'add' },
      { key: 'b', a: 2, b: 3, to: 'mul' },
      { key: 'c', a: 2, b: 3, to: 'nope' },
      { key: 'd', a: 2, b: 3 },
    ].map((m) => JSON.stringify(m)).join('\n') + '\n';
    const result = await runCli([...twoModels, '--partitions', '2', '--route', 'to', '--errors', errorsFile], input);
    assert.equal(result.code, 0, result.stderr);
    const outputs = jsonLines(result.stdout).sort((x, y) => x.offset - y.offset);
    assert.deepEqual(outputs.map((o) => [o.offset, o.model, o.output.r]), [[0, 'add', 5], [1, 'mul', 6]]);
    const errors = jsonLines(readFileSync(errorsFile, 'utf8')).sort((x, y) => x.offset - y.offset);
    assert.deepEqual(errors.map((e) => [e.offset, e.error.code]), [[2, 'PYSTAGE_ROUTING'], [3, 'PYSTAGE_ROUTING']]);
    assert.match(errors[0]!.error.message, /nope/);
    assert.equal(JSON.parse(errors[1]!.input).key, 'd');
  });

  test('bad lines and model errors go to --errors with the original line; the rest flows', async () => {
    const dir = tempDir('pystage-test-');
    const errorsFile = join(dir, 'errors.jsonl');
    const input = Buffer.concat([
      Buffer.from('{"key":"x","seq":0}\n'),
      Buffer.from('not json\n'),
      Buffer.from('[1,2]\n'),
      Buffer.from('42\n'),
      Buffer.from('\n'),
      Buffer.from([0x7b, 0x22, 0x6b, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a]), // {"k":"<bad utf-8>"}
      Buffer.from('{"key":"y","seq":6,"fail":true}\n'),
      Buffer.from('{"seq":7}'), // no key, no final newline
    ]);
    const result = await runCli(['run', '--python-path', fixtures, '--model', `h=${fixtures}hostile.py`, '--partitions', '2', '--errors', errorsFile], input);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(jsonLines(result.stdout).map((o) => o.offset).sort(), [0, 7]);
    const errors = jsonLines(readFileSync(errorsFile, 'utf8')).sort((x, y) => x.offset - y.offset);
    assert.deepEqual(errors.map((e) => [e.offset, e.error.code]), [
      [1, 'PYSTAGE_BAD_INPUT'], [2, 'PYSTAGE_BAD_INPUT'], [3, 'PYSTAGE_BAD_INPUT'], [4, 'PYSTAGE_BAD_INPUT'],
      [5, 'PYSTAGE_BAD_INPUT'], [6, 'PYSTAGE_MODEL_EXECUTION'],
    ]);
    assert.equal(errors[0]!.input, 'not json');
    // One vocabulary: the CLI's error line has the API record's fields (`input`, not `line`).
    assert.deepEqual(Object.keys(errors[5]!), ['offset', 'key', 'partition', 'model', 'input', 'error']);
    assert.match(errors[4]!.error.message, /UTF-8/);
    assert.equal(errors[5]!.model, 'h');
    assert.equal(errors[5]!.error.type, 'ValueError');
    assert.match(errors[5]!.error.message, /asked to fail at seq 6/);
    // The model's frame, as in the API's record: file, line and function.
    assert.match(errors[5]!.error.traceback, /hostile\.py", line 17, in execute\n/);
    assert.match(errors[5]!.error.traceback, /ValueError: asked to fail at seq 6/);
    assert.equal(errors[0]!.error.traceback, null);
    const summary = summaryOf(result.stderr);
    assert.deepEqual([summary.in, summary.out, summary.errors], [8, 2, 6]);
  });

  test('a 20 MB message travels through spool files both ways', async () => {
    const blob = 'x'.repeat(10_000_000) + 'é'.repeat(5_000_000); // 20 MB of UTF-8
    const input = JSON.stringify({ key: 'big', blob }) + '\n' + JSON.stringify({ key: 'small', blob: 'ab' }) + '\n';
    const result = await runCli(['run', '--python-path', fixtures, '--model', `echo=${fixtures}echo_blob.py`, '--partitions', '1'], input);
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const outputs = jsonLines(result.stdout);
    assert.equal(outputs.length, 2);
    assert.equal(outputs[0]!.output.length, 15_000_000);
    assert.ok(outputs[0]!.output.blob === blob, 'the 20 MB blob came back unchanged');
    assert.deepEqual(outputs[1]!.output, { length: 2, blob: 'ab' });
  });

  test('exit codes: 2 for bad usage, bad options and models that cannot load, 1 when the machine cannot run the stage, with a clear message', async () => {
    const usage = await runCli(['run']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--model/);
    const badOptions = await runCli(['run', '--model', `a=${fixtures}arith.py`, '--model-options', 'a=[1]', '--python-path', fixtures]);
    assert.equal(badOptions.code, 2);
    assert.match(badOptions.stderr, /must be a JSON object/);
    const missing = await runCli(['run', '--python-path', fixtures, '--model', `ghost=${fixtures}no_such_model.py`, '--partitions', '1']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /ghost/);
    assert.match(missing.stderr, /no_such_model\.py/);
    const noPython = await runCli(['run', '--python', '/nonexistent/python3', '--python-path', fixtures, '--model', `a=${fixtures}arith.py`, '--partitions', '1']);
    assert.equal(noPython.code, 1);
    assert.match(noPython.stderr, /\/nonexistent\/python3/);
    const noPath = await runCli(['run', '--python-path', '/nonexistent/models', '--model', `a=${fixtures}arith.py`]);
    assert.equal(noPath.code, 2);
    assert.match(noPath.stderr, /\/nonexistent\/models/);
    const badErrors = await runCli(['run', '--python-path', fixtures, '--model', `a=${fixtures}arith.py`, '--errors', '/nonexistent/dir/errors.jsonl']);
    assert.equal(badErrors.code, 1);
    assert.match(badErrors.stderr, /--errors file.*\/nonexistent\/dir\/errors\.jsonl/);
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /pystage run --model NAME=FILE/);
  });

  test('a reader that closes stdout early (| head) stops the run with exit 1 and a summary, not a crash', async () => {
    const { child, done } = startCli(['run', '--python-path', fixtures, '--model', `add=${fixtures}arith.py`, '--partitions', '2']);
    child.stdin!.on('error', () => {});
    child.stdin!.end(lines(200_000, (i) => ({ key: `k${i % 10}`, a: i, b: 1 })));
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.stdout!.destroy();
    const result = await done;
    assert.equal(result.code, 1, result.stderr.slice(-1000));
    assert.match(result.stderr, /stdout was closed by its reader/);
    const summary = summaryOf(result.stderr);
    assert.ok(summary.in < 200_000, 'input stopped being read');
    assert.equal(summary.in, summary.out + summary.errors);
  });

  test('SIGTERM finishes what was read, exits 143 with an interrupted summary; SIGKILL of node leaves no Python server after 3 s', async () => {
    const args = ['run', '--python-path', fixtures, '--model', `add=${fixtures}arith.py`, '--partitions', '2', '--log-level', 'info'];
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const { child, done } = startCli(args);
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
      const pids = await new Promise<number[]>((resolve) => {
        const found: number[] = [];
        child.stderr!.on('data', () => {
          for (const m of stderr.matchAll(/"serverPid":(\d+)[^\n]*"msg":"partition ready"/g)) {
            if (!found.includes(Number(m[1]))) found.push(Number(m[1]));
          }
          if (found.length === 2) resolve(found);
        });
      });
      child.stdin!.write(lines(1000, (i) => ({ key: `k${i}`, a: i, b: 1 })));
      await new Promise((r) => setTimeout(r, 300));
      child.kill(signal);
      const result = await done;
      if (signal === 'SIGTERM') {
        assert.equal(result.code, 143, stderr.slice(-2000));
        const summary = summaryOf(stderr);
        assert.equal(summary.in, 1000);
        assert.equal(summary.interrupted, true);
        assert.equal(summary.resumeOffset, 1000);
        assert.equal(jsonLines(result.stdout).length, 1000);
      }
      assert.ok(await waitGone(pids, 3000), `Python servers ${pids} still alive 3 s after node got ${signal}`);
    }
  });
});
