/**
 * Redis Streams benchmark (`node dist/bench/redis-streams.js [--messages N] [--rounds R]`):
 * the same model and messages through stdin → stdout, one stage over a consumer group, and two
 * stages sharing the group; then what the Redis round trips cost per message without a stage:
 * batched (XREADGROUP COUNT 512, the stage's store script: the XADDs and the XACK in one call) against one message at a time.
 * A redis-server of its own on a free loopback port, no persistence, stopped at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { runStoreScript } from '../src/redis/store-script.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { cliScript, modelFile, repoRoot } from './config.js';
import { messageAt, writeInputFile } from './input.js';
import { median } from './measurement.js';

const { values } = parseArgs({ options: { messages: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.messages ?? 200_000);
const ROUNDS = Number(values.rounds ?? 3);

/** stdin → stdout: spawn → exit. */
async function viaStdin(input: string, partitions: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pystage-bench-'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [cliScript, 'run', '--model', `add=${modelFile}`, '--partitions', String(partitions)], {
    cwd: repoRoot, stdio: [openSync(input, 'r'), openSync(join(dir, 'out'), 'w'), 'ignore'],
  });
  await new Promise((resolve) => child.on('exit', resolve));
  const seconds = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return N / seconds;
}

async function fill(c: Redis, stream: string): Promise<void> {
  for (let start = 0; start < N; start += 5_000) {
    const p = c.pipeline();
    for (let i = start; i < Math.min(N, start + 5_000); i++) p.xadd(stream, '*', 'data', JSON.stringify(messageAt(i)));
    await p.exec();
  }
}

async function groupDone(c: Redis, stream: string): Promise<boolean> {
  const [info] = (await c.xinfo('GROUPS', stream)) as unknown[][];
  if (!info) return false;
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < info.length; i += 2) m.set(String(info[i]), info[i + 1]);
  return Number(m.get('entries-read')) >= N && Number(m.get('pending')) === 0;
}

/** `stages` stages over one preloaded stream: spawn → every entry acknowledged (polled every 20 ms). */
async function viaRedis(redis: TestRedis, round: string, stages: number, partitions: number): Promise<number> {
  const stream = `in-${round}`;
  await fill(redis.client, stream);
  const t0 = performance.now();
  const children = Array.from({ length: stages }, (_, k) => spawn(process.execPath, [cliScript, 'run', '--model', `add=${modelFile}`,
    '--partitions', String(partitions), '--source', redis.url(stream), '--group', 'g', '--consumer', `c${k}`, '--sink', redis.url(`out-${round}`)],
  { cwd: repoRoot, stdio: ['ignore', 'ignore', 'ignore'] }));
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      if (await groupDone(redis.client, stream)) break;
    } catch { /* the group does not exist yet */ }
  }
  const seconds = (performance.now() - t0) / 1000;
  const exits = children.map((c) => new Promise((resolve) => c.on('exit', resolve)));
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(exits);
  const out = await redis.client.xlen(`out-${round}`);
  if (out !== N) throw new Error(`${stages} stage(s): ${out} outputs for ${N} entries`);
  await redis.client.del(stream, `out-${round}`);
  return N / seconds;
}

/** The Redis work of a stage without the stage: read, write one output per entry, acknowledge. µs per message. */
async function plumbing(redis: TestRedis, batched: boolean, round: number): Promise<number> {
  const c = redis.client;
  const count = batched ? N : Math.min(N, 20_000);
  const stream = `plumb-${batched}-${round}`;
  for (let start = 0; start < count; start += 5_000) {
    const p = c.pipeline();
    for (let i = start; i < Math.min(count, start + 5_000); i++) p.xadd(stream, '*', 'data', JSON.stringify(messageAt(i)));
    await p.exec();
  }
  await c.xgroup('CREATE', stream, 'g', '0');
  const t0 = performance.now();
  let done = 0;
  while (done < count) {
    const reply = (await c.callBuffer('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', batched ? 512 : 1, 'STREAMS', stream, '>')) as [Buffer, [Buffer, Buffer[]][]][];
    const entries = reply[0]![1];
    if (batched) {
      await runStoreScript(c, {
        source: stream, group: 'g', ids: entries.map(([id]) => id.toString('latin1')), errorsStream: null, errors: [],
        outputsStream: `${stream}-out`, outputs: entries.map(([id, fields]) => Buffer.concat([Buffer.from(`{"id":"${id}","output":`), fields[1]!, Buffer.from('}')])),
      });
    } else {
      const [id, fields] = entries[0]!;
      await c.xadd(`${stream}-out`, '*', 'data', Buffer.concat([Buffer.from(`{"id":"${id}","output":`), fields[1]!, Buffer.from('}')]));
      await c.xack(stream, 'g', id);
    }
    done += entries.length;
  }
  const us = ((performance.now() - t0) * 1000) / count;
  await c.del(stream, `${stream}-out`);
  return us;
}

const redis = await startRedis();
const dir = mkdtempSync(join(tmpdir(), 'pystage-bench-in-'));
try {
  const input = writeInputFile(dir, N).path;
  const cores = availableParallelism();
  process.stderr.write(`redis-streams bench: ${N} messages, ${ROUNDS} rounds, ${cores} cores, load ${loadavg()[0]!.toFixed(2)}\n`);
  const rows: [string, () => Promise<number>][] = [
    ['stdin → stdout, 1 stage, 2 partitions', () => viaStdin(input, 2)],
    ['redis → redis, 1 stage, 2 partitions', () => viaRedis(redis, `1x2-${Math.random()}`, 1, 2)],
    ['redis → redis, 2 stages × 1 partition', () => viaRedis(redis, `2x1-${Math.random()}`, 2, 1)],
    ['redis → redis, 2 stages × 2 partitions', () => viaRedis(redis, `2x2-${Math.random()}`, 2, 2)],
  ];
  const results = new Map<string, number[]>(rows.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of rows) {
      const rate = await run();
      results.get(name)!.push(rate);
      process.stderr.write(`  round ${r + 1}: ${name}: ${Math.round(rate)} msg/s\n`);
    }
  }
  const batchedRuns: number[] = [];
  for (let r = 0; r < ROUNDS; r++) batchedRuns.push(await plumbing(redis, true, r));
  const batched = median(batchedRuns);
  const single = await plumbing(redis, false, 0);
  process.stdout.write(`| runner | msg/s (median of ${ROUNDS}) |\n|---|---|\n`);
  for (const [name] of rows) process.stdout.write(`| ${name} | ${Math.round(median(results.get(name)!)).toLocaleString('en-US')} |\n`);
  process.stdout.write(`\nRedis round trips without a stage: batched (XREADGROUP COUNT 512, one store script of XADDs + XACK) ${batched.toFixed(1)} µs/msg; ` +
    `one message at a time (XREADGROUP COUNT 1, XADD, XACK, each awaited) ${single.toFixed(1)} µs/msg\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await redis.stop();
}
