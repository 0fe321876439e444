/**
 * Shard mode with real redis-server processes and real members (CLI processes, each leading its own
 * process group): members killed, paused past their lease, cut off from Redis, and joining late;
 * a refused write. Every entry gets exactly one output, per-key counters run 1, 2, 3 … in entry
 * order, the state stored in Redis equals the counts, and nothing is left pending.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { shardOf } from '../../src/index.js';
import { jsonLines, runCli, summaryOf, type CliResult } from '../support/cli-runner.js';
import { freePort } from '../support/free-port.js';
import { cliPath, fixtures, repoRoot } from '../support/paths.js';
import { startRedis } from '../support/redis-server.js';
import { pendingIds, readStream } from '../support/redis-stage.js';
import { startProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const LEASE_MS = 1500;
const live = new Set<ChildProcess>();

interface Member {
  name: string;
  child: ChildProcess;
  done: Promise<CliResult>;
  /** Signal the member's whole process group (node and its Python servers). */
  signal(sig: NodeJS.Signals): void;
  /** Its exit, or a failure naming what it wrote, if it has not exited within `ms`. */
  exited(ms?: number): Promise<CliResult>;
}

/** A member of group g over in.0 … in.{shards-1}, counting per key (keyed_counter), through `port`. */
function member(name: string, port: number, shards: number, extra: string[] = []): Member {
  const url = (s: string) => `redis://127.0.0.1:${port}/${s}`;
  const child = spawn(process.execPath, [cliPath, 'run', '--model', `count=${join(fixtures, 'keyed_counter.py')}`,
    '--source', url('in'), '--group', 'g', '--shards', String(shards), '--consumer', name, '--lease-ms', String(LEASE_MS),
    '--sink', url('out'), '--errors', url('errors'), '--log-level', process.env.SHARD_LOG ?? 'warn', ...extra], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => {
    live.delete(child);
    resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
  }));
  const exited = (ms = 30_000) => Promise.race([done, new Promise<never>((_, reject) => setTimeout(() => {
    reject(new Error(`member ${name} did not exit within ${ms} ms; its stderr:\n${Buffer.concat(err).toString().slice(-4000)}`));
  }, ms).unref())]);
  return { name, child, done, exited, signal: (sig) => { try { process.kill(-child.pid!, sig); } catch { /* gone */ } } };
}

function stopLeftovers(): void {
  for (const child of live) {
    try { process.kill(-child.pid!, 'SIGCONT'); process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
  live.clear();
}

/** Add `n` messages over `keys` keys, each to its key's shard; returns the ids per key, in order. */
async function produce(c: Redis, shards: number, n: number, from: number, keys = 24, extra: (seq: number) => object = () => ({})): Promise<void> {
  const batch = c.pipeline();
  for (let seq = from; seq < from + n; seq++) {
    const key = `k${seq % keys}`;
    batch.xadd(`in.${shardOf(key, shards)}`, '*', 'data', JSON.stringify({ key, seq, ...extra(seq) }));
  }
  for (const [e] of (await batch.exec())!) if (e) throw e;
}

/** Owners of the shards right now, from their leases: member -> shards. */
async function owners(c: Redis, shards: number): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  for (let s = 0; s < shards; s++) {
    const value = await c.get(`pystage:{in.${s}}:g:lease`);
    if (value === null) continue;
    const name = value.slice(0, value.lastIndexOf(':'));
    held.set(name, (held.get(name) ?? 0) + 1);
  }
  return held;
}

async function pendingAll(c: Redis, shards: number): Promise<number> {
  let n = 0;
  for (let s = 0; s < shards; s++) n += (await pendingIds(c, `in.${s}`, 'g')).length;
  return n;
}

/** The exactly-once checks: one output per entry, counters 1, 2, 3 … in entry order per key, the stored state equal to the counts. */
async function checkExactlyOnce(c: Redis, shards: number, total: number): Promise<void> {
  const outputs = await readStream(c, 'out');
  // Entry IDs are per stream (two shards may hold the same ID): a record's "partition" is its shard.
  const byId = new Map<string, Record<string, any>>();
  for (const r of outputs) {
    const entry = `${r.record.partition}/${r.record.id}`;
    assert.ok(!byId.has(entry), `entry ${entry} has more than one output: ${JSON.stringify(byId.get(entry))} and ${r.text}`);
    byId.set(entry, r.record);
  }
  assert.equal(byId.size, total, 'every entry has an output');
  for (let s = 0; s < shards; s++) {
    const perKey = new Map<string, number>();
    for (const [id] of await c.xrange(`in.${s}`, '-', '+')) {
      const record = byId.get(`${s}/${id}`);
      assert.ok(record, `entry ${id} of in.${s} has no output`);
      const key = record.output.key as string;
      const expected = (perKey.get(key) ?? 0) + 1;
      perKey.set(key, expected);
      assert.equal(record.output.n, expected, `key ${key}: entry ${id} counted ${record.output.n}, expected ${expected}`);
    }
    for (const [key, count] of perKey) {
      assert.equal(await c.hget(`pystage:{in.${s}}:g:state:count`, key), String(count), `stored state of ${key} in shard ${s}`);
    }
  }
  assert.equal(await pendingAll(c, shards), 0, 'nothing is left pending');
}

test('three members over eight shards, one SIGKILLed, one paused past its lease, a fourth joining late: exactly once, per-key order, state in Redis, balanced', async () => {
  const redis = await startRedis();
  const c = redis.client;
  try {
    await produce(c, 8, 600, 0, 24, () => ({ sleep: 0.002 }));
    const [a, b, cc] = ['A', 'B', 'C'].map((name) => member(name, redis.port, 8));
    await waitFor('A, B and C to share the shards', async () => (await owners(c, 8)).size === 3, 30_000);
    await waitFor('some outputs', async () => (await c.xlen('out')) >= 100, 30_000);
    a!.signal('SIGKILL');
    assert.equal((await a!.done).signal, 'SIGKILL');
    await produce(c, 8, 600, 600, 24, () => ({ sleep: 0.002 }));
    await waitFor('A\'s shards taken over', async () => !(await owners(c, 8)).has('A') && [...(await owners(c, 8)).values()].reduce((x, y) => x + y, 0) === 8, 30_000);
    const bHeld = (await owners(c, 8)).get('B') ?? 0;
    assert.ok(bHeld > 0, 'B owns shards when it is paused');
    b!.signal('SIGSTOP');
    await produce(c, 8, 300, 1200, 24, () => ({ sleep: 0.002 }));
    await waitFor('C to take B\'s shards while B is paused', async () => !(await owners(c, 8)).has('B'), 30_000);
    await new Promise((r) => setTimeout(r, LEASE_MS));
    b!.signal('SIGCONT');
    const d = member('D', redis.port, 8);
    let membersNow: string[] = [];
    const watch = setInterval(() => { c.zrange('pystage:{in}:g:members', 0, -1).then((m) => { membersNow = m; }, () => {}); }, 200);
    watch.unref();
    await produce(c, 8, 300, 1500, 24);
    const total = 1800;
    await waitFor('every entry output and acknowledged', async () => (await c.xlen('out')) >= total && await pendingAll(c, 8) === 0, 45_000);
    let held = new Map<string, number>();
    await waitFor('B, C and D each owning 2 or 3 shards', async () => {
      held = await owners(c, 8);
      return held.size === 3 && ['B', 'C', 'D'].every((m) => (held.get(m) ?? 0) >= 2 && (held.get(m) ?? 0) <= 3);
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; owners: ${JSON.stringify([...held])}; members: ${JSON.stringify(membersNow)}`);
    });
    await checkExactlyOnce(c, 8, total);
    assert.equal(await c.xlen('errors'), 0);
    // pystage state prints what is stored: one line per key, its count (24 keys, 75 entries each).
    const printed = await runCli(['state', redis.url('in'), '--group', 'g', '--shards', '8', '--model', 'count']);
    assert.equal(printed.code, 0, printed.stderr);
    const lines = jsonLines(printed.stdout);
    assert.equal(lines.length, 24);
    for (const line of lines) {
      assert.equal(line.shard, shardOf(line.key, 8));
      assert.equal(line.value, total / 24);
    }
    for (const m of [b!, cc!, d]) m.signal('SIGTERM');
    const [rb, rc, rd] = await Promise.all([b!.exited(), cc!.exited(), d.exited()]);
    for (const r of [rb, rc, rd]) assert.equal(r.code, 0, r.stderr.slice(-2000));
    const [sb, sc, sd] = [rb, rc, rd].map((r) => summaryOf(r.stderr).shards);
    // The faults happened: B lost its leases while paused; C took over A's and B's shards; D took shards from the others.
    assert.ok(sb.leasesLost >= 1, `B lost its leases while paused: ${JSON.stringify(sb)}`);
    assert.ok(sc.takenOver >= 3, `C took over shards: ${JSON.stringify(sc)}`);
    assert.ok(sd.takenOver >= 2, `D took shards: ${JSON.stringify(sd)}`);
    // SIGTERM handed every shard over: no lease is left, nobody is a member.
    assert.equal((await owners(c, 8)).size, 0, `leases left: ${JSON.stringify([...await owners(c, 8)])}`);
    assert.equal(await c.zcard('pystage:{in}:g:members'), 0);
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('a refused write (an --errors key holding a string) writes nothing; the next run stores everything exactly once', async () => {
  const redis = await startRedis();
  const c = redis.client;
  try {
    await c.set('errors', 'not a stream');
    // One shard, read in one go: the first commit holds outputs and the error record of entry 5 together.
    await produce(c, 1, 20, 0, 4, (seq) => (seq === 5 ? { fail: true } : {}));
    const first = member('A', redis.port, 1);
    const r1 = await first.exited();
    assert.equal(r1.code, 1, r1.stderr.slice(-2000));
    assert.match(r1.stderr, /PYSTAGE_WRONGTYPE key "errors" holds a string/);
    const stored = await readStream(c, 'out');
    const pending = new Set(await pendingIds(c, 'in.0', 'g'));
    for (const r of stored) assert.ok(!pending.has(r.record.id), `entry ${r.record.id} was output but is still pending`);
    assert.ok(pending.size > 0, 'the refused commit left its entries pending');
    await c.del('errors');
    const second = member('A', redis.port, 1);
    await waitFor('every entry acknowledged', async () => (await pendingAll(c, 1)) === 0 && (await c.xlen('out')) + (await c.xlen('errors')) >= 20, 30_000);
    second.signal('SIGTERM');
    assert.equal((await second.exited()).code, 0);
    const outputs = await readStream(c, 'out');
    const errors = await readStream(c, 'errors');
    assert.equal(errors.length, 1, 'one error record: entry 5');
    assert.equal(new Set(outputs.map((r) => r.record.id)).size, outputs.length, 'no entry output twice (one shard: IDs are unique)');
    assert.equal(outputs.length, 19);
    // Counters: a failed message changes nothing, so each key counts its successful entries.
    const perKey = new Map<string, number>();
    for (const r of outputs.sort((x, y) => (x.record.offset as number) - (y.record.offset as number))) {
      const n = (perKey.get(r.record.output.key) ?? 0) + 1;
      perKey.set(r.record.output.key, n);
    }
    for (const [key, n] of perKey) assert.equal(await c.hget('pystage:{in.0}:g:state:count', key), String(n));
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('a member cut off from Redis longer than its lease gives its shards up and rejoins when the connection is back', async () => {
  const redis = await startRedis();
  const proxy = await startProxy(redis.port);
  const c = redis.client;
  try {
    await produce(c, 4, 300, 0, 12, () => ({ sleep: 0.002 }));
    const cut = member('P', proxy.port, 4, ['--progress', '--progress-interval', '200']);
    const metricsPort = await freePort();
    const direct = member('Q', redis.port, 4, ['--metrics-port', String(metricsPort)]);
    const shardsOwned = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return Number(/^pystage_shards_owned (\d+)$/m.exec(text)?.[1]);
    };
    await waitFor('P and Q to own two shards each', async () => {
      const held = await owners(c, 4);
      return held.get('P') === 2 && held.get('Q') === 2;
    }, 30_000);
    proxy.cut();
    await produce(c, 4, 300, 300, 12, () => ({ sleep: 0.002 }));
    await waitFor('Q to own every shard while P is cut off', async () => (await owners(c, 4)).get('Q') === 4, 30_000);
    await waitFor('/metrics to say Q owns 4 shards', async () => (await shardsOwned()) === 4);
    await new Promise((r) => setTimeout(r, LEASE_MS));
    proxy.restore();
    await produce(c, 4, 200, 600, 12);
    await waitFor('P to own shards again', async () => (await owners(c, 4)).get('P') === 2, 30_000);
    await waitFor('every entry output and acknowledged', async () => (await c.xlen('out')) >= 800 && await pendingAll(c, 4) === 0, 45_000);
    await checkExactlyOnce(c, 4, 800);
    cut.signal('SIGTERM');
    direct.signal('SIGTERM');
    const [rp, rq] = await Promise.all([cut.exited(), direct.exited()]);
    assert.equal(rp.code, 0, rp.stderr.slice(-2000));
    assert.equal(rq.code, 0, rq.stderr.slice(-2000));
    const sp = summaryOf(rp.stderr).shards;
    // --progress lines carry the ownership too: P owned shards, then none while cut off.
    const progress = jsonLines(rp.stderr).filter((l) => l.progress).map((l) => l.progress.shards);
    assert.ok(progress.some((s) => s.owned.length === 2) && progress.some((s) => s.owned.length === 0 && s.leasesLost >= 2), JSON.stringify(progress));
    assert.ok(proxy.refused > 0, 'P tried to reconnect while cut off');
    assert.ok(sp.leasesLost >= 2, `P gave its two shards up: ${JSON.stringify(sp)}`);
    assert.ok(sp.takenOver >= 4, `P took shards again after the cut: ${JSON.stringify(sp)}`);
  } finally {
    stopLeftovers();
    await proxy.close();
    await redis.stop();
  }
});
