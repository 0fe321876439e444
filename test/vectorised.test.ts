/**
 * Vectorised models (execute_batch) and the output type table through the whole stage, real servers:
 * order, None items, a raising batch with and without execute, a server dying mid-batch, --no-batch-model,
 * --nan-as-null, Decimal digits on the wire, and the math thread variables each server starts with.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createStage, InvalidOptionError, type StageOutput, type StageRecord } from '../src/index.js';
import { UsageError } from '../src/api/errors.js';
import { parseCommandLine } from '../src/cli/cli-args.js';
import { collect } from './support/collect.js';
import { jsonLines, runCli, summaryOf } from './support/cli-runner.js';
import { fixtures } from './support/paths.js';

const vectorisedFile = join(fixtures, 'vectorised.py');

function outputs(records: StageRecord[]): StageOutput[] {
  return records.filter((r): r is StageOutput => r.kind === 'output');
}

function errors(records: StageRecord[]): { offset: number; code: string; type?: string; message: string }[] {
  return records.flatMap((r) => (r.kind === 'error' ? [{ offset: r.offset, code: r.error.code, type: r.error.type, message: r.error.message }] : []));
}

async function runStage(messages: object[], className: string, extra: { partitions?: number; batch?: boolean; nanAsNull?: boolean } = {}): Promise<{ records: StageRecord[]; restarts: number }> {
  const stage = await createStage({
    partitions: extra.partitions ?? 1, pythonPath: fixtures, logLevel: 'silent', nanAsNull: extra.nanAsNull,
    models: [{ name: 'v', file: 'vectorised.py', className, batch: extra.batch }],
  });
  try {
    const records = await collect(stage.process(messages));
    return { records, restarts: stage.stats().restarts };
  } finally {
    await stage.close();
  }
}

describe('vectorised models through the stage', () => {
  test('batches reach execute_batch whole, outputs in order, None items counted as no output', async () => {
    const messages = Array.from({ length: 500 }, (_, i) => ({ key: 'k', seq: i, ...(i % 7 === 3 ? { none: true } : {}) }));
    const { records } = await runStage(messages, 'Vectorised');
    assert.deepEqual(errors(records), []);
    const outs = outputs(records);
    const expected = messages.filter((m) => !('none' in m)).map((m) => m.seq);
    assert.deepEqual(outs.map((o) => o.output.seq), expected, 'every output once, in input order');
    assert.deepEqual(outs.map((o) => o.offset), expected);
    assert.ok(outs.every((o) => o.output.via === 'batch'), 'nothing ran one at a time');
    // 500 messages offered at once: the stage batches them, so some call saw more than one message.
    assert.ok(outs.some((o) => (o.output.size as number) > 1), `batch sizes: ${[...new Set(outs.map((o) => o.output.size))].join(', ')}`);
  });

  test('a raising batch of a model with execute: only the culprit fails, the rest run one at a time', async () => {
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 5}`, seq: i, ...(i === 150 ? { raise: true } : {}) }));
    const { records } = await runStage(messages, 'Vectorised', { partitions: 2 });
    assert.deepEqual(errors(records).map((e) => [e.offset, e.code, e.type, e.message]),
      [[150, 'PYSTAGE_MODEL_EXECUTION', 'ValueError', 'cannot score message 150']]);
    const outs = outputs(records);
    assert.deepEqual(outs.map((o) => o.output.seq).sort((a, b) => (a as number) - (b as number)), messages.filter((m) => m.seq !== 150).map((m) => m.seq));
    assert.ok(outs.some((o) => o.output.via === 'one'), 'the culprit\'s batch was re-run one message at a time');
  });

  test('a raising batch of a model without execute: every message of that batch gets the error, no other', async () => {
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: 'k', seq: i, ...(i === 150 ? { raise: true } : {}) }));
    const { records } = await runStage(messages, 'BatchOnly');
    const failed = errors(records);
    assert.ok(failed.some((e) => e.offset === 150), 'the culprit failed');
    for (const e of failed) assert.deepEqual([e.code, e.type, e.message], ['PYSTAGE_MODEL_EXECUTION', 'ValueError', 'cannot score message 150']);
    // The failed messages are one batch: consecutive offsets around the culprit; everything else has its output.
    const offsets = failed.map((e) => e.offset);
    assert.deepEqual(offsets, Array.from({ length: offsets.length }, (_, i) => offsets[0]! + i));
    assert.equal(outputs(records).length + failed.length, 300);
  });

  test('a server dying inside execute_batch: restarted, the batch split, every other message answered once in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pystage-vec-'));
    try {
      const messages = Array.from({ length: 400 }, (_, i) => ({
        key: 'k', seq: i,
        ...(i === 120 ? { crash: 'once', marker: join(dir, 'crashed') } : {}),
        ...(i === 300 ? { crash: 'always' } : {}),
      }));
      const { records, restarts } = await runStage(messages, 'Vectorised');
      assert.deepEqual(errors(records).map((e) => [e.offset, e.code]), [[300, 'PYSTAGE_POISON_MESSAGE']]);
      assert.deepEqual(outputs(records).map((o) => o.output.seq), messages.filter((m) => m.seq !== 300).map((m) => m.seq));
      assert.ok(restarts >= 4, `1 crash of message 120 and 3 of the poison message 300; counted ${restarts} restarts`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an execute_batch call that hangs past the deadline: the batch is split, the hanging message alone given up', async () => {
    const messages = Array.from({ length: 60 }, (_, i) => ({ key: 'k', seq: i, ...(i === 20 ? { hang: true } : {}) }));
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 1500,
      models: [{ name: 'v', file: 'vectorised.py', className: 'Vectorised' }],
    });
    try {
      const records = await collect(stage.process(messages));
      assert.deepEqual(errors(records).map((e) => [e.offset, e.code, e.type]), [[20, 'PYSTAGE_POISON_MESSAGE', 'Timeout']]);
      assert.deepEqual(outputs(records).map((o) => o.output.seq), messages.filter((m) => m.seq !== 20).map((m) => m.seq));
    } finally {
      await stage.close();
    }
  });

  test('batch: false runs a vectorised model one message at a time', async () => {
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: 'k', seq: i }));
    const { records } = await runStage(messages, 'Vectorised', { batch: false });
    assert.deepEqual(outputs(records).map((o) => [o.output.seq, o.output.via]), messages.map((m) => [m.seq, 'one']));
  });

  test('each server starts with cores ÷ partitions math threads, and a variable the user set wins', async () => {
    const previous = process.env.OMP_NUM_THREADS;
    process.env.OMP_NUM_THREADS = '3';
    try {
      const { records } = await runStage([{ key: 'k', seq: 0, env: true }], 'Vectorised');
      const env = outputs(records)[0]!.output.env as Record<string, string>;
      const cores = String(availableParallelism()); // 1 partition: every core
      assert.deepEqual(env, {
        OPENBLAS_NUM_THREADS: cores, OMP_NUM_THREADS: '3', MKL_NUM_THREADS: cores, VECLIB_MAXIMUM_THREADS: cores, NUMEXPR_NUM_THREADS: cores,
      });
    } finally {
      if (previous === undefined) delete process.env.OMP_NUM_THREADS;
      else process.env.OMP_NUM_THREADS = previous;
    }
    const partitions = availableParallelism() + 1; // more partitions than cores: still one thread each
    const messages = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, seq: i, env: true }));
    const { records } = await runStage(messages, 'Vectorised', { partitions });
    const seen = new Set(outputs(records).map((o) => JSON.stringify(o.output.env)));
    assert.deepEqual([...seen].map((s) => JSON.parse(s)), [{
      OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', VECLIB_MAXIMUM_THREADS: '1', NUMEXPR_NUM_THREADS: '1',
    }]);
  });

  test('options: batch and nanAsNull must be booleans; --no-batch-model must name a model', async () => {
    await assert.rejects(createStage({ pythonPath: fixtures, models: [{ name: 'v', file: 'vectorised.py', batch: 'no' as unknown as boolean }] }), InvalidOptionError);
    await assert.rejects(createStage({ pythonPath: fixtures, nanAsNull: 1 as unknown as boolean, models: [{ name: 'v', file: 'vectorised.py' }] }), InvalidOptionError);
    assert.throws(() => parseCommandLine(['run', '--model', 'v=x.py', '--no-batch-model', 'w']), UsageError);
    const parsed = parseCommandLine(['run', '--model', 'v=x.py:Vectorised', '--model', 'w=y.py', '--no-batch-model', 'v', '--nan-as-null']);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind === 'run') {
      assert.deepEqual(parsed.options.models.map((m) => [m.name, m.batch]), [['v', false], ['w', undefined]]);
      assert.equal(parsed.options.nanAsNull, true);
    }
  });
});

describe('the CLI with a vectorised model', () => {
  const input = [
    { key: 'a', seq: 0, decimal: '123456789012345678901234567890.000000000000000000001' },
    { key: 'a', seq: 1, nan: true },
    { key: 'a', seq: 2, when: true },
  ].map((m) => JSON.stringify(m)).join('\n') + '\n';

  test('Decimal digits reach stdout exactly; NaN fails its message; a date is ISO 8601', async () => {
    const result = await runCli(['run', '--model', `v=${vectorisedFile}:Vectorised`, '--partitions', '1'], input);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 2, result.stdout);
    assert.ok(lines[0]!.includes('"value":123456789012345678901234567890.000000000000000000001}'), lines[0]);
    const { size: _size, ...dated } = jsonLines(lines[1]!)[0]!.output;
    assert.deepEqual(dated, { seq: 2, via: 'batch', when: ['2026-11-30', 1] });
    const errorLine = jsonLines(result.stderr).find((l) => l.offset === 1);
    assert.ok(errorLine, result.stderr);
    assert.equal(errorLine.error.type, 'BadModelOutput');
    assert.match(errorLine.error.message, /output\['value'\]: nan is not valid JSON.*--nan-as-null/);
    assert.equal(summaryOf(result.stderr).errors, 1);
  });

  test('--nan-as-null writes null; --no-batch-model runs one at a time', async () => {
    const result = await runCli(['run', '--model', `v=${vectorisedFile}:Vectorised`, '--partitions', '1', '--nan-as-null', '--no-batch-model', 'v'], input);
    assert.equal(result.code, 0, result.stderr);
    const outs = jsonLines(result.stdout).map((l) => l.output);
    assert.equal(outs.length, 3);
    assert.deepEqual(outs[1], { seq: 1, via: 'one', size: 1, value: null });
    assert.ok(outs.every((o) => o.via === 'one'));
    assert.equal(summaryOf(result.stderr).errors, 0);
  });
});
