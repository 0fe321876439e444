/**
 * RedisStateStore against a real redis-server: a commit under a lease that is no longer the
 * member's writes nothing at all (outputs, state, acks), a commit sent twice (its reply lost) is
 * applied once, and what was committed loads back as it was written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaseLostError } from '../../src/api/errors.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { RedisStateStore } from '../../src/redis/redis-state-store.js';
import { shardKeys } from '../../src/redis/shard-keys.js';
import { startRedis } from '../support/redis-server.js';
import { pendingIds } from '../support/redis-stage.js';

const retry = { logger: createLogger('fatal'), reconnectMinMs: 10, reconnectMaxMs: 50 };

test('a commit under a lost lease writes nothing; a commit sent twice is applied once; state loads back byte for byte', async () => {
  const redis = await startRedis();
  const c = redis.client;
  try {
    const k = shardKeys('in', 'g', 3);
    await c.xgroup('CREATE', k.stream, 'g', '0', 'MKSTREAM');
    const ids = [await c.xadd(k.stream, '*', 'data', '{"key":"a"}'), await c.xadd(k.stream, '*', 'data', '{"key":"b"}')] as string[];
    await c.xreadgroup('GROUP', 'g', 'old', 'STREAMS', k.stream, '>');
    const store = new RedisStateStore(c, { stream: 'in', group: 'g', outputsStream: 'out', errorsStream: 'errors', retry });
    const big = '123456789012345678901234567890';
    const unit = (lease: string, commitId: string) => ({
      unit: 3, changes: ['count', 'a', big, null, 'count', 'gone', null, null],
      meta: { lease, commitId, outputs: [Buffer.from('{"o":1}')], errors: [Buffer.from('{"e":1}')], ids },
    });
    // Another member owns the shard now (a later token).
    await c.set(k.lease, 'B:2', 'PX', 10_000);
    await assert.rejects(store.commit([unit('A:1', 'A:1:1')]), (err: unknown) => err instanceof LeaseLostError && err.shards.join() === '3');
    assert.equal(await c.exists('out', 'errors', k.state('count'), k.models), 0, 'nothing was written');
    assert.equal((await pendingIds(c, k.stream, 'g')).length, 2, 'nothing was acknowledged');

    await store.commit([unit('B:2', 'B:2:1')]);
    await store.commit([unit('B:2', 'B:2:1')]);
    assert.equal(await c.xlen('out'), 1, 'the resent commit appended nothing more');
    assert.equal(await c.xlen('errors'), 1);
    assert.equal((await pendingIds(c, k.stream, 'g')).length, 0);
    assert.deepEqual((await store.load(3)).entries, [{ model: 'count', key: 'a', text: big, expiresAt: null }]);
  } finally {
    await redis.stop();
  }
});
