/** The Redis Streams API: runRedisStage over a source and sinks, and the building blocks (iterable + ack, a sink for stream.pipeline). */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { join } from 'node:path';
import { createStage, redisSink, redisSource, runRedisStage } from '../../src/index.js';
import { startRedis } from '../support/redis-server.js';
import { addMessages, countById, pendingIds, readStream } from '../support/redis-stage.js';
import { waitFor } from '../support/wait-for.js';
import { collect } from '../support/collect.js';
import { fixtures, modelsDir } from '../support/paths.js';

test('runRedisStage: every entry stored and acknowledged, including the ones with no output; stop() drains', async () => {
  const redis = await startRedis();
  // Odd values of a give no output (None): those entries must be acknowledged all the same.
  const stage = await createStage({ partitions: 2, models: [{ name: 'total', file: join(fixtures, 'running_total.py'), options: { skip_odd: true } }], logLevel: 'silent' });
  const source = redisSource(redis.url('in'), { group: 'g', consumer: 'api' });
  const sink = redisSink(redis.url('out'));
  const errors = redisSink(redis.url('errors'));
  try {
    const c = redis.client;
    const ids = await addMessages(c, 'in', Array.from({ length: 500 }, (_, i) => (i % 100 === 99 ? '{"b":1}' : JSON.stringify({ key: `k${i % 7}`, a: i }))));
    const run = runRedisStage(stage, source, { outputs: sink, errors });
    await waitFor('every entry acknowledged', async () => (await pendingIds(c, 'in', 'g')).length === 0 && (await c.xlen('out')) === 250 && (await c.xlen('errors')) === 5);
    source.stop();
    const stats = await run;
    assert.equal(stats.acked, 500);
    assert.equal(stats.in, 500);
    assert.equal(stats.out, 250);
    assert.equal(stats.errors, 5);
    const outputs = countById(await readStream(c, 'out'));
    const failed = countById(await readStream(c, 'errors'));
    ids.forEach((id, i) => {
      if (i % 100 === 99) assert.equal(failed.get(id), 1, `entry ${i}: one error record`);
      else assert.equal(outputs.get(id), i % 2 === 0 ? 1 : undefined, `entry ${i}`);
    });
    assert.equal(stage.stats().noOutput, 245);
  } finally {
    await stage.close();
    await source.close();
    await sink.close();
    await errors.close();
    await redis.stop();
  }
});

test('building blocks: iterate a source, process, write through sink.writable() in stream.pipeline, ack; unacked entries come back to the same consumer', async () => {
  const redis = await startRedis();
  const stage = await createStage({ partitions: 1, models: [{ name: 'add', file: join(modelsDir, 'add.py') }], logLevel: 'silent' });
  try {
    const c = redis.client;
    const ids = await addMessages(c, 'in', Array.from({ length: 20 }, (_, i) => JSON.stringify({ key: 'k', a: i, b: 1 })));
    const source = redisSource(redis.url('in'), { group: 'g', consumer: 'me' });
    const taken: { id: string; message: unknown }[] = [];
    for await (const entry of source) {
      taken.push(entry);
      if (taken.length === 10) break;
    }
    const records = await collect(stage.process(taken.map((e) => e.message)));
    const sink = redisSink(redis.url('out'));
    await pipeline(Readable.from(records), sink.writable());
    // Acknowledge only what is stored: the first 10 entries.
    await source.ack(taken.map((e) => e.id));
    await source.close();
    assert.deepEqual(taken.map((e) => e.id), ids.slice(0, 10));
    const stored = await readStream(c, 'out');
    assert.deepEqual(stored.map((s) => s.record.output.sum), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const pending = await pendingIds(c, 'in', 'g', 'me');
    // The source read a whole batch: what it delivered but was never acknowledged is still pending.
    assert.deepEqual(pending, ids.slice(10));

    const again = redisSource(redis.url('in'), { group: 'g', consumer: 'me' });
    const first = await again.next();
    assert.deepEqual(first!.map((e) => e.id), ids.slice(10), 'the same consumer reads its unacknowledged entries back first');
    await again.ack(first!.map((e) => e.id));
    await again.close();
    assert.deepEqual(await pendingIds(c, 'in', 'g'), []);
  } finally {
    await stage.close();
    await redis.stop();
  }
});
