/**
 * Shard mode against group mode (`node dist/bench/redis-shards.js [--messages N]`), run once: the
 * same messages through one stage of 2 partitions over a consumer group, and one member of 2 shards
 * (the same 2 Python servers), with a model that keeps no state (add.py) and one that counts per key
 * in self.context.state (keyed_counter.py: in memory in group mode, committed to Redis with every
 * batch's outputs and acks in shard mode). Then the commit script alone, without a stage: µs per
 * entry for 512-entry commits with no state change and with one per entry.
 * A redis-server of its own on a free loopback port, no persistence, stopped at the end.
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { createLogger } from '../src/telemetry/logger.js';
import { RedisStateStore } from '../src/redis/redis-state-store.js';
import { runStoreScript } from '../src/redis/store-script.js';
import { shardKeys, shardOf } from '../src/redis/shard-keys.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { cliScript, modelFile, repoRoot } from './config.js';
import { messageAt } from './input.js';

const { values } = parseArgs({ options: { messages: { type: 'string' } } });
const N = Number(values.messages ?? 100_000);
const SHARDS = 2;
const counter = new URL('../../test/fixtures/models/keyed_counter.py', import.meta.url).pathname;

async function fill(c: Redis, streamOf: (key: string) => string): Promise<void> {
  for (let start = 0; start < N; start += 5_000) {
    const p = c.pipeline();
    for (let i = start; i < Math.min(N, start + 5_000); i++) {
      const m = messageAt(i);
      p.xadd(streamOf(m.key), '*', 'data', JSON.stringify(m));
    }
    await p.exec();
  }
}

/** Entries read and not pending, over the given streams' group g (0 before the group exists). */
async function finished(c: Redis, streams: string[]): Promise<number> {
  let done = 0;
  for (const stream of streams) {
    try {
      for (const g of (await c.xinfo('GROUPS', stream)) as unknown[][]) {
        const m = new Map<string, unknown>();
        for (let i = 0; i + 1 < g.length; i += 2) m.set(String(g[i]), g[i + 1]);
        done += Number(m.get('entries-read')) - Number(m.get('pending'));
      }
    } catch { /* no group yet */ }
  }
  return done;
}

/** Spawn → every entry acknowledged; checks the sink holds N outputs. msg/s. */
async function timed(redis: TestRedis, name: string, model: string, shards: boolean): Promise<number> {
  const prefix = `${name}-${Math.random().toString(36).slice(2)}`;
  const streams = shards ? Array.from({ length: SHARDS }, (_, i) => `${prefix}.${i}`) : [prefix];
  await fill(redis.client, (key) => (shards ? `${prefix}.${shardOf(key, SHARDS)}` : prefix));
  const args = ['run', '--model', `m=${model}`, '--source', redis.url(prefix), '--group', 'g', '--consumer', 'c',
    '--sink', redis.url(`${prefix}-out`), '--errors', redis.url(`${prefix}-errors`),
    ...(shards ? ['--shards', String(SHARDS)] : ['--partitions', String(SHARDS)])];
  const t0 = performance.now();
  const child = spawn(process.execPath, [cliScript, ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'ignore'] });
  while (await finished(redis.client, streams) < N) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  const exit = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exit;
  const out = await redis.client.xlen(`${prefix}-out`);
  if (out !== N) throw new Error(`${name}: ${out} outputs for ${N} entries`);
  await redis.client.flushall();
  return N / seconds;
}

/**
 * The commit script alone: 512-entry commits of outputs + acks, with `withState` one state change per
 * entry; `groupScript`: group mode's store script (XADDs + XACK, no fence, no checks) instead, for scale. µs per entry.
 */
async function commitCost(redis: TestRedis, withState: boolean, groupScript = false): Promise<number> {
  const c = redis.client;
  const k = shardKeys('plumb', 'g', 0);
  const count = Math.min(N, 50_000);
  for (let start = 0; start < count; start += 5_000) {
    const p = c.pipeline();
    for (let i = start; i < Math.min(count, start + 5_000); i++) p.xadd(k.stream, '*', 'data', JSON.stringify(messageAt(i)));
    await p.exec();
  }
  await c.xgroup('CREATE', k.stream, 'g', '0');
  await c.set(k.lease, 'c:1');
  const store = new RedisStateStore(c, { stream: 'plumb', group: 'g', outputsStream: 'plumb-out', errorsStream: 'plumb-errors',
    retry: { logger: createLogger('fatal'), reconnectMinMs: 50, reconnectMaxMs: 2000 } });
  let spent = 0;
  let seq = 0;
  for (let done = 0; done < count;) {
    const reply = (await c.callBuffer('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 512, 'STREAMS', k.stream, '>')) as [Buffer, [Buffer, Buffer[]][]][];
    const entries = reply[0]![1];
    const ids = entries.map(([id]) => id.toString('latin1'));
    const changes: (string | null)[] = [];
    if (withState) entries.forEach((_, i) => changes.push('m', `acct-${(done + i) % 1000}`, String(done + i)));
    const outputs = entries.map(([id, fields]) => Buffer.concat([Buffer.from(`{"id":"${id}","output":`), fields[1]!, Buffer.from('}')]));
    const t0 = performance.now();
    if (groupScript) await runStoreScript(c, { source: k.stream, group: 'g', ids, outputsStream: 'plumb-out', outputs, errorsStream: null, errors: [] });
    else await store.commit([{ unit: 0, changes, meta: { lease: 'c:1', commitId: `c:1:${++seq}`, outputs, errors: [], ids } }]);
    spent += performance.now() - t0;
    done += entries.length;
  }
  await c.flushall();
  return (spent * 1000) / count;
}

const redis = await startRedis();
try {
  process.stderr.write(`redis-shards bench: ${N} messages, ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}\n`);
  const rows: [string, () => Promise<number>][] = [
    ['group mode, 1 stage × 2 partitions, add.py (no state)', () => timed(redis, 'group-add', modelFile, false)],
    ['shard mode, 1 member × 2 shards, add.py (no state)', () => timed(redis, 'shard-add', modelFile, true)],
    ['group mode, 1 stage × 2 partitions, keyed_counter.py (state in memory)', () => timed(redis, 'group-count', counter, false)],
    ['shard mode, 1 member × 2 shards, keyed_counter.py (state committed)', () => timed(redis, 'shard-count', counter, true)],
  ];
  process.stdout.write('| runner | msg/s |\n|---|---|\n');
  for (const [name, run] of rows) process.stdout.write(`| ${name} | ${Math.round(await run()).toLocaleString('en-US')} |\n`);
  const group = await commitCost(redis, false, true);
  const bare = await commitCost(redis, false);
  const stateful = await commitCost(redis, true);
  process.stdout.write(`\nStoring alone, 512 entries a call, one output each: group mode's store script ${group.toFixed(1)} µs/entry; ` +
    `shard mode's commit script ${bare.toFixed(1)} µs/entry; with one state change per entry ${stateful.toFixed(1)} µs/entry\n`);
} finally {
  await redis.stop();
}
