/**
 * Through `pystage run`: models written for the original Python server run unchanged (ModelInstance
 * base from the user's own `common/`, four-argument constructors, JSON strings as results, blank for
 * no output, tab-indented files), and host handlers given with --handlers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLines, runCli, summaryOf } from './support/cli-runner.js';
import { fnv1a } from '../src/index.js';

const lines = (messages: object[]) => messages.map((m) => JSON.stringify(m)).join('\n') + '\n';

test('original-server models: string results, blank = no output, PartitionHash = the partition, tab-indented files', async () => {
  const messages = [
    { key: 'a', m: 'sum', x: 1, y: 2 },
    { key: 'b', m: 'sum', x: 10, y: 5 },
    { key: 'c', m: 'sum', skip: true, x: 0, y: 0 },
    { key: 'd', m: 'sum', boom: true, x: 0, y: 0 },
    { key: 'e', m: 'product', x: 6, y: 7 },
    { key: 'f', m: 'product', skip: true, x: 1, y: 1 },
    { key: 'g', m: 'product', x: 12345678901, y: 1000000000 },
  ];
  const result = await runCli([
    'run', '--python-path', 'test/fixtures/legacy', '--model', 'sum=test/fixtures/legacy/models/sum.py', '--model', 'product=test/fixtures/legacy/models/product.py',
    '--model-options', 'sum={"scale":3}', '--route', 'm', '--partitions', '3', '--ordered',
  ], lines(messages));
  assert.equal(result.code, 0, result.stderr);
  const out = jsonLines(result.stdout);
  const part = (key: string) => fnv1a(key) % 3;
  assert.deepEqual(out.map((o) => [o.key, o.model, o.partition, o.output]), [
    ['a', 'sum', part('a'), { x: 1, y: 2, operator: '+', result: 3, partitionHash: part('a'), scale: 3 }],
    ['b', 'sum', part('b'), { x: 10, y: 5, operator: '+', result: 15, partitionHash: part('b'), scale: 3 }],
    ['e', 'product', part('e'), { product: 42, partition: part('e'), portIsText: true }],
    ['g', 'product', part('g'), { product: 12345678901000000000, partition: part('g'), portIsText: true }],
  ]);
  // Every digit of a result beyond 2^53 survives: the model's string is the output.
  assert.match(result.stdout, /"product":12345678901000000000/);
  const summary = summaryOf(result.stderr);
  assert.deepEqual([summary.in, summary.out, summary.noOutput, summary.errors], [7, 4, 2, 1]);
  assert.match(result.stderr, /KeyError/);
});

test('--handlers FILE: named exports answer the models\' requests, with the partition, model and key', async () => {
  const messages = [
    { key: 'k1', handler: 'double', payload: 21 },
    { key: 'k2', handler: 'describe', payload: [1, 'two'] },
    { key: 'k3', handler: 'refuse' },
    { key: 'k4', handler: 'absent' },
  ];
  const result = await runCli(['run', '--model', 'ask=test/fixtures/models/asker.py', '--handlers', 'test/fixtures/handlers.mjs', '--partitions', '2', '--ordered'], lines(messages));
  assert.equal(result.code, 0, result.stderr);
  const out = jsonLines(result.stdout).map((o) => o.output);
  assert.deepEqual(out.slice(0, 3), [
    { answer: 42 },
    { answer: { payload: [1, 'two'], partition: fnv1a('k2') % 2, model: 'ask', key: 'k2' } },
    { error: 'refused by the host', type: 'HandlerError' },
  ]);
  assert.equal(out[3].type, 'UnknownHandler');
  assert.match(out[3].error, /handlers: describe, double, refuse/);
});

test('--handlers with a module that exports something other than a function is bad usage', async () => {
  const result = await runCli(['run', '--model', 'ask=test/fixtures/models/asker.py', '--handlers', 'test/fixtures/bad-handlers.mjs'], '');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /export "limit" is not a function/);
  const missing = await runCli(['run', '--model', 'ask=test/fixtures/models/asker.py', '--handlers', 'test/fixtures/nope.mjs'], '');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--handlers test\/fixtures\/nope.mjs: no such file/);
});
