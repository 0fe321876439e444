/**
 * Where a message's latency goes, hop by hop: `node dist/bench/tools/hop-trace.js [--rate 5000]
 * [--messages 20000] [--warmup 0.2] [--partitions N] [--out FILE]`.
 *
 * Runs the API as the bench's latency run does (bench/input.ts PacedSource, push → output record) in a
 * child `node --trace-gc` with PYSTAGE_HOP_TRACE set, so every thread and every Python server stamps
 * each batch's hops (src/telemetry/hop-trace.ts, py/pystage/hop_trace.py) and its GC pauses (perf_hooks
 * 'gc' entries in every isolate, Python gc.callbacks). Then it joins the stamps per message and prints
 * the median of each hop over all messages and over the p99 samples (latency ≥ p99), which hop took
 * the most of each p99 sample, and how many p99 samples a GC pause overlapped, by thread.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Rows { fields: string[]; rows: number[][] }
interface TraceFile { role: 'main' | 'worker' | 'python'; pid: number; hops: Rows; gc: Rows | null }
interface ChildResult { warmup: number; pushed: number[]; recorded: number[]; partition: number[]; partitions: number }

const HOPS = [
  ['queue', 'push → batch sent (stage pull, lane, setImmediate)'],
  ['toWorker', 'main → worker (Piscina task)'],
  ['toSocket', 'worker: task → request written'],
  ['toServer', 'socket → server read'],
  ['server', 'server: read → reply sent'],
  ['toReply', 'reply sent → worker read it'],
  ['inWorker', 'worker: reply read → task returned'],
  ['toMain', 'worker → main (task result)'],
  ['deliver', 'main: result → batch delivered'],
  ['toRecord', 'delivered → record out of process()'],
] as const;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

async function child(): Promise<void> {
  const { PacedSource } = await import('../input.js');
  const { benchStage } = await import('../runners.js');
  const count = Number(arg('messages', '20000'));
  const rate = Number(arg('rate', '5000'));
  const partitions = arg('partitions', '') === '' ? null : Number(arg('partitions', ''));
  const warmup = Math.floor(count * Number(arg('warmup', '0.2')));
  // performance.now() of this thread → hrtime ns, the clock of every stamp.
  const offset = Number(process.hrtime.bigint()) - performance.now() * 1e6;
  const stage = await benchStage(partitions);
  const source = new PacedSource(count, rate);
  const recorded = new Array<number>(count).fill(-1);
  const partition = new Array<number>(count).fill(-1);
  for await (const record of stage.process(source)) {
    recorded[record.offset] = Number(process.hrtime.bigint());
    partition[record.offset] = record.partition ?? -1;
  }
  await stage.close();
  const pushed = Array.from(source.pushedAt, (ms) => offset + ms * 1e6);
  const result: ChildResult = { warmup, pushed, recorded, partition, partitions: stage.partitions };
  writeFileSync(join(process.env.PYSTAGE_HOP_TRACE!, 'child.json'), JSON.stringify(result));
}

function col(rows: Rows, name: string): number {
  const i = rows.fields.indexOf(name);
  if (i < 0) throw new Error(`no field ${name}`);
  return i;
}

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Does any pause in `pauses` ([start, ns] pairs) overlap [from, to]? */
function overlaps(pauses: number[][], from: number, to: number): boolean {
  return pauses.some(([start, ns]) => start! < to && start! + ns! > from);
}

function analyse(dir: string, gcLog: string): void {
  const files = readdirSync(dir).filter((f) => f !== 'child.json').map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as TraceFile);
  const run = JSON.parse(readFileSync(join(dir, 'child.json'), 'utf8')) as ChildResult;
  const main = files.find((f) => f.role === 'main');
  if (main === undefined) throw new Error('no main-thread trace: was PYSTAGE_HOP_TRACE seen by the stage?');
  const mh = main.hops;
  const worker = new Map<number, number[]>();
  const workerGc: number[][][] = [];
  const python = new Map<string, number[]>();
  const pythonGc = new Map<number, number[][]>();
  for (const f of files) {
    if (f.role === 'worker') {
      for (const r of f.hops.rows) worker.set(r[col(f.hops, 'trace')]!, r);
      workerGc.push(f.gc?.rows ?? []);
    } else if (f.role === 'python') {
      for (const r of f.hops.rows) python.set(`${f.pid}:${r[0]}`, r);
      pythonGc.set(f.pid, f.gc?.rows ?? []);
    }
  }
  const wf = files.find((f) => f.role === 'worker')!.hops;
  // Messages of a partition leave in offset order, so batch k of partition p holds its next `count` messages.
  const byPartition = new Map<number, number[]>();
  for (let o = 0; o < run.recorded.length; o++) {
    const list = byPartition.get(run.partition[o]!) ?? [];
    list.push(o);
    byPartition.set(run.partition[o]!, list);
  }
  const next = new Map<number, number>();
  const hops: number[][] = [];
  const windows: { o: number; total: number; h: number[]; sent: number; replied: number; pid: number; pr: number[] | undefined }[] = [];
  for (const b of [...mh.rows].sort((x, y) => x[0]! - y[0]!)) {
    const p = b[col(mh, 'partition')]!;
    const list = byPartition.get(p) ?? [];
    const at = next.get(p) ?? 0;
    next.set(p, at + b[col(mh, 'count')]!);
    const w = worker.get(b[0]!);
    if (w === undefined) continue;
    const pid = w[col(wf, 'serverPid')]!;
    const pr = python.get(`${pid}:${w[col(wf, 'request')]}`);
    for (const o of list.slice(at, at + b[col(mh, 'count')]!)) {
      if (o < run.warmup || run.recorded[o]! < 0) continue;
      const stamps = [run.pushed[o]!, b[col(mh, 'sent')]!, w[col(wf, 'received')]!, w[col(wf, 'written')]!,
        pr?.[1] ?? NaN, pr?.[2] ?? NaN, w[col(wf, 'replyRead')]!, w[col(wf, 'returned')]!,
        b[col(mh, 'replied')]!, b[col(mh, 'delivered')]!, run.recorded[o]!];
      const h = HOPS.map((_, k) => (stamps[k + 1]! - stamps[k]!) / 1000);
      hops.push(h);
      windows.push({ o, total: (run.recorded[o]! - run.pushed[o]!) / 1000, h, sent: b[col(mh, 'sent')]!, replied: b[col(mh, 'replied')]!, pid, pr });
    }
  }
  const totals = windows.map((x) => x.total);
  const p99 = quantile(totals, 0.99);
  const tail = windows.filter((x) => x.total >= p99);
  const mainGc = main.gc?.rows ?? [];
  const blamed = new Map<string, number>();
  let mainHit = 0, workerHit = 0, pyHit = 0;
  for (const x of tail) {
    const k = x.h.reduce((best, v, i) => (v > x.h[best]! ? i : best), 0);
    blamed.set(HOPS[k]![0], (blamed.get(HOPS[k]![0]) ?? 0) + 1);
    const from = run.pushed[x.o]!, to = run.recorded[x.o]!;
    if (overlaps(mainGc, from, to)) mainHit++;
    if (workerGc.some((g) => overlaps(g, x.sent, x.replied))) workerHit++;
    if (x.pr !== undefined && overlaps(pythonGc.get(x.pid) ?? [], x.pr[1]!, x.pr[2]!)) pyHit++;
  }
  const fmt = (v: number) => (Number.isNaN(v) ? '   -' : v.toFixed(0).padStart(6));
  console.log(`messages traced ${windows.length} (after warm-up); latency µs: p50 ${quantile(totals, 0.5).toFixed(0)}, p90 ${quantile(totals, 0.9).toFixed(0)}, p99 ${p99.toFixed(0)}, max ${Math.max(...totals).toFixed(0)}`);
  console.log(`\nhop                                         median µs   p99-samples median µs   p99 samples it dominated (of ${tail.length})`);
  HOPS.forEach(([name, what], k) => {
    const all = quantile(hops.map((h) => h[k]!), 0.5);
    const t = quantile(tail.map((x) => x.h[k]!), 0.5);
    console.log(`${(name + ': ' + what).padEnd(44)} ${fmt(all)}      ${fmt(t)}                  ${blamed.get(name) ?? 0}`);
  });
  const pauses = (rows: number[][]) => `${rows.length} pauses, ${(rows.reduce((s, r) => s + r[1]!, 0) / 1e6).toFixed(1)} ms, longest ${(Math.max(0, ...rows.map((r) => r[1]!)) / 1e6).toFixed(2)} ms`;
  console.log(`\nGC (perf_hooks / gc.callbacks): main ${pauses(mainGc)}; workers ${workerGc.map(pauses).join(' | ')}; python ${[...pythonGc.values()].map(pauses).join(' | ')}`);
  console.log(`p99 samples overlapped by a GC pause: main thread ${mainHit}, a worker ${workerHit}, its Python server ${pyHit} (of ${tail.length})`);
  const marks = new Map<string, { mc: number; sc: number }>();
  for (const line of gcLog.split('\n')) {
    const m = /^\[\d+:(0x[0-9a-f]+)\].*?(Mark-Compact|Scavenge)/.exec(line);
    if (m === null) continue;
    const e = marks.get(m[1]!) ?? { mc: 0, sc: 0 };
    if (m[2] === 'Mark-Compact') e.mc++; else e.sc++;
    marks.set(m[1]!, e);
  }
  console.log(`--trace-gc, per isolate (first = main): ${[...marks.values()].map((e) => `${e.mc} Mark-Compact / ${e.sc} Scavenge`).join('; ')}`);
}

function parent(): void {
  const dir = mkdtempSync(join(tmpdir(), 'hop-trace-'));
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--trace-gc', self, '--child', ...process.argv.slice(2)], {
    env: { ...process.env, PYSTAGE_HOP_TRACE: dir }, encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`traced child failed (${r.status ?? r.signal})`);
  const out = arg('out', '');
  if (out !== '') writeFileSync(out, r.stdout);
  console.log(`hop-trace: ${process.argv.slice(2).join(' ') || '(defaults)'}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  analyse(dir, r.stdout);
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv.includes('--child')) await child();
else parent();
