/**
 * self.context.request and self.context.cache with real servers: handler answers and their context,
 * handler errors caught in the model, unknown handlers, timeouts, waiting on the host not counted as a
 * hang, cache writes of one partition read by another, the host's stage.cache, TTL and LRU limits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, fnv1a, type StageOutput, type StageRecord } from '../src/index.js';
import { collect } from './support/collect.js';
import { fixtures } from './support/paths.js';
import { killStorm } from './support/kill-storm.js';

const outputs = (records: StageRecord[]) => records.map((r) => (r.kind === 'output' ? (r as StageOutput).output : r.error));

/** A key that lands on `partition` of `partitions`. */
function keyOn(partition: number, partitions: number, prefix: string): string {
  for (let i = 0; ; i++) if (fnv1a(`${prefix}${i}`) % partitions === partition) return `${prefix}${i}`;
}

test('handlers answer requests made while a batch runs; errors, unknown names and timeouts reach the model as HostRequestError', async () => {
  const seen: unknown[] = [];
  const stage = await createStage({
    partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'ask', file: 'asker.py' }],
    hostRequestTimeoutMs: 5_000, ordered: true,
    handlers: {
      lookup: async (payload: { id: number }, context) => {
        seen.push(context);
        await new Promise((r) => setTimeout(r, 5));
        return { id: payload.id, name: `user-${payload.id}` };
      },
      boom: () => { throw new Error('the lookup table is gone'); },
      never: () => new Promise(() => {}),
      nothing: () => undefined,
    },
  });
  try {
    const lookups = Array.from({ length: 40 }, (_, i) => ({ key: `u${i}`, handler: 'lookup', payload: { id: i } }));
    const records = await collect(stage.process([
      ...lookups,
      { key: 'e', handler: 'boom' },
      { key: 'u', handler: 'missing' },
      { key: 't', handler: 'never', timeout: 0.3 },
      { key: 'n', handler: 'nothing' },
    ]));
    const out = outputs(records) as Record<string, any>[];
    assert.deepEqual(out.slice(0, 40), lookups.map((m) => ({ answer: { id: m.payload.id, name: `user-${m.payload.id}` } })));
    assert.deepEqual(out[40], { error: 'the lookup table is gone', type: 'HandlerError' });
    assert.equal(out[41]!.type, 'UnknownHandler');
    assert.match(out[41]!.error, /no host handler named "missing" \(handlers: lookup, boom, never, nothing\)/);
    assert.equal(out[42]!.type, 'HostRequestTimeout');
    assert.match(out[42]!.error, /within 300 ms/);
    assert.deepEqual(out[43], { answer: null });
    // Each request names the partition, the model and the key of the message that asked.
    const contexts = new Map((seen as { key: string; partition: number; model: string }[]).map((c) => [c.key, c]));
    for (const m of lookups) {
      assert.deepEqual(contexts.get(m.key), { key: m.key, model: 'ask', partition: fnv1a(m.key) % 2 });
    }
    const stats = stage.stats();
    assert.equal(stats.errors, 0);
    assert.equal(stats.hostRequests, 44);
    assert.equal(stats.hostRequestErrors, 2);
  } finally {
    await stage.close();
  }
});

test('time spent waiting on the host does not count toward executeTimeoutMs', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 300, models: [{ name: 'ask', file: 'asker.py' }],
    handlers: { slow: async (n: number) => { await new Promise((r) => setTimeout(r, 1200)); return n + 1; } },
  });
  try {
    const records = await collect(stage.process([{ key: 'a', handler: 'slow', payload: 1 }, { key: 'b', handler: 'slow', payload: 2 }]));
    assert.deepEqual(outputs(records), [{ answer: 2 }, { answer: 3 }]);
    assert.equal(stage.stats().restarts, 0);
  } finally {
    await stage.close();
  }
});

test('a model that polls the host forever is a hang: only the waiting is left out of executeTimeoutMs', { timeout: 30_000 }, async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 1000, models: [{ name: 'ask', file: 'asker.py' }],
  });
  try {
    const records = await collect(stage.process([{ key: 'a', op: 'poll', name: 'x' }, { key: 'b', op: 'get', name: 'y' }]));
    const [hung, next] = records;
    assert.ok(hung?.kind === 'error', JSON.stringify(hung));
    assert.equal(hung.error.code, 'PYSTAGE_POISON_MESSAGE');
    assert.equal(hung.error.type, 'Timeout');
    assert.deepEqual((next as StageOutput).output, { got: 'missing' });
    // Killed for its deadline (twice when both messages left as one batch: the batch, then the message alone).
    assert.deepEqual(Object.keys(stage.stats().restartCauses), ['timeout']);
    assert.ok(stage.stats().hostRequests > 3, 'it did poll');
  } finally {
    await stage.close();
  }
});

test('the cache is shared: a value set by a message is read by messages of another partition and by the host', async () => {
  const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', ordered: true, models: [{ name: 'ask', file: 'asker.py' }] });
  try {
    const writer = keyOn(0, 2, 'w');
    const reader = keyOn(1, 2, 'r');
    // The promise is "visible by the time the setting message's output is emitted": the get comes after.
    const set = await collect(stage.process([{ key: writer, op: 'set', name: 'rate', value: { eur: 1.08, big: '12345678901234567890' } }]));
    assert.deepEqual(outputs(set), [{ set: 'rate' }]);
    assert.equal(set[0]!.partition, 0);
    const got = await collect(stage.process([{ key: reader, op: 'get', name: 'rate' }, { key: writer, op: 'get', name: 'absent' }]));
    assert.deepEqual(got.map((r) => r.partition), [1, 0]);
    assert.deepEqual(outputs(got), [{ got: { eur: 1.08, big: '12345678901234567890' } }, { got: 'missing' }]);
    assert.deepEqual(stage.cache.get('rate'), { eur: 1.08, big: '12345678901234567890' });
    // The host writes, models read; a model deletes, the host sees it gone.
    stage.cache.set('greeting', 'hello');
    assert.deepEqual(outputs(await collect(stage.process([{ key: reader, op: 'get', name: 'greeting' }]))), [{ got: 'hello' }]);
    assert.deepEqual(outputs(await collect(stage.process([{ key: writer, op: 'delete', name: 'greeting' }]))), [{ deleted: true }]);
    assert.deepEqual(outputs(await collect(stage.process([{ key: reader, op: 'delete', name: 'greeting' }]))), [{ deleted: false }]);
    assert.equal(stage.cache.get('greeting'), undefined);
  } finally {
    await stage.close();
  }
});

test('cache entries expire after their TTL; the cache evicts the least recently used beyond its limits; a value too large fails', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', cacheMaxEntries: 3, cacheMaxBytes: 200, models: [{ name: 'ask', file: 'asker.py' }] });
  try {
    const run = async (messages: Record<string, unknown>[]) => outputs(await collect(stage.process(messages.map((m) => ({ key: 'k', ...m })))));
    await run([{ op: 'set', name: 'short', value: 1, ttl: 0.2 }]);
    assert.deepEqual(await run([{ op: 'get', name: 'short' }]), [{ got: 1 }]);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await run([{ op: 'get', name: 'short' }]), [{ got: 'missing' }]);
    // a, b, c; reading a makes b the least recently used; d evicts b.
    await run([{ op: 'set', name: 'a', value: 1 }, { op: 'set', name: 'b', value: 2 }, { op: 'set', name: 'c', value: 3 }, { op: 'get', name: 'a' }, { op: 'set', name: 'd', value: 4 }]);
    assert.deepEqual(await run([{ op: 'get', name: 'a' }, { op: 'get', name: 'b' }, { op: 'get', name: 'c' }, { op: 'get', name: 'd' }]), [{ got: 1 }, { got: 'missing' }, { got: 3 }, { got: 4 }]);
    assert.equal(stage.stats().cacheEvictions, 1);
    // Bytes: a 150-byte value pushes out older entries to stay within 200 bytes.
    await run([{ op: 'set', name: 'wide', value: 'x'.repeat(150) }]);
    assert.ok(stage.stats().cacheBytes <= 200);
    assert.equal(stage.cache.get('wide'), 'x'.repeat(150));
    const tooBig = await run([{ op: 'set', name: 'huge', value: 'x'.repeat(500) }]);
    assert.equal((tooBig[0] as { type: string }).type, 'CacheValueTooLarge');
    assert.throws(() => stage.cache.set('huge', 'x'.repeat(500)), { code: 'PYSTAGE_CACHE_VALUE_TOO_LARGE' });
  } finally {
    await stage.close();
  }
});

test('an answer too large for a frame fails the model\'s request, not the connection', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxFrameBytes: 256 * 1024, maxBatchBytes: 64 * 1024, inlineLimit: 64 * 1024,
    maxStateBytes: 64 * 1024, models: [{ name: 'ask', file: 'asker.py' }],
    handlers: { huge: () => 'x'.repeat(300 * 1024), small: () => 'ok' },
  });
  try {
    const out = outputs(await collect(stage.process([{ key: 'a', handler: 'huge' }, { key: 'a', handler: 'small' }]))) as Record<string, unknown>[];
    assert.equal(out[0]!.type, 'HostAnswerTooLarge');
    assert.deepEqual(out[1], { answer: 'ok' });
    assert.equal(stage.stats().restarts, 0);
  } finally {
    await stage.close();
  }
});

test('Prometheus metrics: state size per partition, the cache, host requests by outcome', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', metricsPort: 0, routeField: 'm',
    models: [{ name: 'ask', file: 'asker.py' }, { name: 'count', file: 'keyed_counter.py' }],
    handlers: { echo: (x: unknown) => x },
  });
  try {
    await collect(stage.process([
      { m: 'count', key: 'a' }, { m: 'count', key: 'b' },
      { m: 'ask', key: 'c', op: 'set', name: 'k', value: 'v' }, { m: 'ask', key: 'c', handler: 'echo', payload: 1 }, { m: 'ask', key: 'c', handler: 'nope' },
    ]));
    const text = await (await fetch(stage.metricsUrl!)).text();
    const value = (line: string) => Number(text.split('\n').find((l) => l.startsWith(line + ' '))?.slice(line.length + 1));
    assert.equal(value('pystage_state_keys{partition="0"}'), 2);
    assert.equal(value('pystage_state_bytes{partition="0"}'), stage.stats().stateBytes);
    assert.equal(value('pystage_cache_entries'), 1);
    assert.equal(value('pystage_cache_bytes'), 1 + 3);
    assert.equal(value('pystage_host_requests_total{outcome="answered"}'), 2);
    assert.equal(value('pystage_host_requests_total{outcome="failed"}'), 1);
  } finally {
    await stage.close();
  }
});

test('servers SIGKILLed while their models wait on the host: every message answered once, right', async () => {
  const stage = await createStage({
    partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'ask', file: 'asker.py' }],
    handlers: { inc: async (x: number) => { await new Promise((r) => setTimeout(r, 1)); return x + 1; } },
  });
  const storm = killStorm(stage, 150);
  let kills = 0;
  const seen = new Set<number>();
  try {
    for await (const r of stage.process(Array.from({ length: 3000 }, (_, i) => ({ key: `k${i % 13}`, handler: 'inc', payload: i })))) {
      assert.equal(r.kind, 'output', JSON.stringify(r));
      assert.deepEqual((r as StageOutput).output, { answer: r.offset + 1 });
      assert.ok(!seen.has(r.offset), `offset ${r.offset} twice`);
      seen.add(r.offset);
    }
  } finally {
    kills = await storm.stop();
    await stage.close();
  }
  assert.equal(seen.size, 3000);
  assert.ok(kills >= 3, `the storm killed ${kills} servers`);
});
