/**
 * What a main → worker → main hand-off of one small batch costs, three ways, interleaved:
 * `node dist/bench/tools/handoff.js [--rounds 5] [--trips 2000] [--gap-ms 1]`.
 *
 * - `piscina`: a Piscina task per batch (what a lane does), the bytes transferred there and back;
 * - `port`: the same bytes over a MessagePort of our own, transferred;
 * - `atomics`: a SharedArrayBuffer the bytes are copied into, Atomics.notify to wake the other side,
 *   Atomics.waitAsync on both sides (the ring the issue proposes, reduced to one slot).
 *
 * A gap between round trips (default 1 ms) lets both threads go to sleep, as a lone message finds
 * them; with --gap-ms 0 the threads stay hot. Prints the median and p99 of the round trip in µs.
 */
import { MessageChannel, Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';

const SLOT = 4096;

/** Atomics.waitAsync (Node 16+; the project's TypeScript lib predates it). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { value: Promise<string> | string } }).waitAsync;
const waited = (a: Int32Array, i: number, v: number): Promise<unknown> => Promise.resolve(waitAsync(a, i, v).value);

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** The worker side of all three: echo what came. */
export default function echo(task: { data: Uint8Array }): unknown {
  return task;
}

function workerSide(): void {
  const { port, sab } = workerData as { port?: MessagePort; sab?: SharedArrayBuffer };
  if (port !== undefined) port.on('message', (m: Uint8Array) => port.postMessage(m, [m.buffer as ArrayBuffer]));
  if (sab !== undefined) {
    const flags = new Int32Array(sab, 0, 2);
    // A pending waitAsync does not keep a thread's event loop alive: without a handle the worker would exit.
    setInterval(() => {}, 1 << 30);
    const wait = (): void => {
      void waited(flags, 0, 0).then(() => {
        Atomics.store(flags, 0, 0);
        Atomics.store(flags, 1, 1);
        Atomics.notify(flags, 1);
        wait();
      });
    };
    wait();
  }
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const rounds = arg('rounds', 5), trips = arg('trips', 2000), gap = arg('gap-ms', 1);
  const payload = Buffer.from('{"key":"acct-1","a":1,"b":2,"seq":1}');
  const pool = new Piscina({ filename: self, minThreads: 1, maxThreads: 1, idleTimeout: Infinity, atomics: 'disabled' });
  const { port1, port2 } = new MessageChannel();
  const portWorker = new Worker(self, { workerData: { port: port2 }, transferList: [port2] });
  const sab = new SharedArrayBuffer(8 + SLOT);
  const flags = new Int32Array(sab, 0, 2);
  const bytes = new Uint8Array(sab, 8);
  const atomicsWorker = new Worker(self, { workerData: { sab } });
  const fresh = () => {
    const b = Buffer.allocUnsafeSlow(payload.length);
    payload.copy(b);
    return b;
  };
  const ways: Record<string, () => Promise<void>> = {
    piscina: async () => {
      const data = fresh();
      await pool.run({ data }, { transferList: [data.buffer] });
    },
    port: () => new Promise((resolve) => {
      port1.once('message', () => resolve());
      const data = fresh();
      port1.postMessage(data, [data.buffer]);
    }),
    atomics: async () => {
      bytes.set(payload);
      const done = waited(flags, 1, 0);
      Atomics.store(flags, 0, 1);
      Atomics.notify(flags, 0);
      await done;
      Atomics.store(flags, 1, 0);
    },
  };
  const results = new Map<string, number[]>(Object.keys(ways).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(ways)) {
      for (let i = 0; i < trips; i++) {
        if (gap > 0) await sleep(gap);
        const t = process.hrtime.bigint();
        await run();
        results.get(name)!.push(Number(process.hrtime.bigint() - t) / 1000);
      }
    }
  }
  console.log(`handoff: ${rounds} rounds × ${trips} round trips, gap ${gap} ms; load average ${(await import('node:os')).loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  for (const [name, v] of results) console.log(`${name.padEnd(8)} median ${quantile(v, 0.5).toFixed(1).padStart(7)} µs   p99 ${quantile(v, 0.99).toFixed(1).padStart(8)} µs`);
  await pool.destroy();
  await portWorker.terminate();
  await atomicsWorker.terminate();
}

if (isMainThread) await main();
else if (parentPort !== null && workerData !== null && workerData !== undefined && ('port' in workerData || 'sab' in workerData)) workerSide();
