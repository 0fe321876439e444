/** Hostile stdin: every line is accounted for, and the run goes on. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { jsonLines, runCli, summaryOf } from '../support/cli-runner.js';
import { fixtures } from '../support/paths.js';
import { tempDir } from '../support/temp-dirs.js';

test('a 50 MB line, CRLF, blanks, scalars, arrays, bad UTF-8 and keyless lines: each one accounted for', async () => {
  const errorsFile = join(tempDir('pystage-test-'), 'errors.jsonl');
  const huge = JSON.stringify({ key: 'huge', seq: 1, blob: 'z'.repeat(50 * 1024 * 1024) });
  const parts: Buffer[] = [
    Buffer.from('{"key":"a","seq":0}\r\n'),
    Buffer.from(huge + '\n'),
    Buffer.from('   \n'),
    Buffer.from('null\n'),
    Buffer.from('"text"\n'),
    Buffer.from('[{"key":"x"}]\n'),
    Buffer.from([0xc3, 0x28, 0x0a]),
    Buffer.from('{"seq":7}\n'),
    Buffer.from('{"seq":8,"key":null}\n'),
    Buffer.from('{"key":"b","seq":9'), // truncated JSON at EOF
  ];
  const result = await runCli(['run', '--python-path', fixtures, '--model', `h=${fixtures}hostile.py`, '--partitions', '2', '--errors', errorsFile], Buffer.concat(parts));
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  const outputs = jsonLines(result.stdout).sort((x, y) => x.offset - y.offset);
  assert.deepEqual(outputs.map((o) => [o.offset, o.output.seq]), [[0, 0], [1, 1], [7, 7], [8, 8]]);
  assert.equal(outputs[1]!.output.size, 50 * 1024 * 1024);
  const errors = jsonLines(readFileSync(errorsFile, 'utf8')).sort((x, y) => x.offset - y.offset);
  assert.deepEqual(errors.map((e) => e.offset), [2, 3, 4, 5, 6, 9]);
  assert.ok(errors.every((e) => e.error.code === 'PYSTAGE_BAD_INPUT'));
  assert.equal(errors[5]!.input, '{"key":"b","seq":9');
  const summary = summaryOf(result.stderr);
  assert.deepEqual([summary.in, summary.out, summary.errors], [10, 4, 6]);
});

test('a line over --max-line-bytes is one error line (its first 1 KiB, its length); the lines around it run', async () => {
  const long = JSON.stringify({ key: 'big', blob: 'q'.repeat(200_000) });
  const input = `{"key":"a","seq":0}\n${long}\n{"key":"b","seq":2}\n${long}`;
  const result = await runCli(['run', '--python-path', fixtures, '--model', `h=${fixtures}hostile.py`, '--partitions', '1', '--max-line-bytes', '100000'], input);
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  assert.deepEqual(jsonLines(result.stdout).map((o) => [o.offset, o.output.seq]), [[0, 0], [2, 2]]);
  const errors = jsonLines(result.stderr).filter((l) => 'offset' in l);
  assert.deepEqual(errors.map((e) => [e.offset, e.error.code, e.error.type, e.input.length]), [[1, 'PYSTAGE_BAD_INPUT', 'MessageTooLarge', 1024], [3, 'PYSTAGE_BAD_INPUT', 'MessageTooLarge', 1024]]);
  assert.ok(errors[0]!.error.message.includes(`${long.length} bytes, over the limit of 100000`), errors[0]!.error.message);
  assert.equal(errors[0]!.input, long.slice(0, 1024));
  const summary = summaryOf(result.stderr);
  assert.deepEqual([summary.in, summary.out, summary.errors], [4, 2, 2]);
});

test('an API message over maxMessageBytes fails alone, with its length and the limit', async () => {
  const { createStage } = await import('../../src/index.js');
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxMessageBytes: 100_000, models: [{ name: 'h', file: 'hostile.py' }] });
  try {
    const records = [];
    for await (const r of stage.process([{ key: 'a', seq: 0 }, { key: 'a', blob: 'é'.repeat(60_000) }, { key: 'a', seq: 2 }])) records.push(r);
    // A rejected message completes at once, ahead of the model's outputs: compare in offset order.
    records.sort((x, y) => x.offset - y.offset);
    assert.deepEqual(records.map((r) => r.kind === 'error' ? r.error.type : 'output'), ['output', 'MessageTooLarge', 'output']);
    assert.match(records[1]!.kind === 'error' ? records[1]!.error.message : '', /^message is 120021 bytes, over the limit of 100000/);
  } finally {
    await stage.close();
  }
});
