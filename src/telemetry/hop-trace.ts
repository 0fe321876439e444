/**
 * Hop timestamps of batches on their way through the stage, for `bench/tools/hop-trace.ts` only.
 *
 * Off unless PYSTAGE_HOP_TRACE names a directory when the module loads. Every hook in the product
 * code is `if (TRACING) …` on the constant below, so with tracing off the hot path pays one test
 * of a constant that never changes (V8 folds it once the code is optimised) and allocates nothing.
 * With tracing on, each thread writes its stamps into preallocated Float64Arrays and dumps them as
 * JSON into that directory when it stops; the Python server does the same (py/pystage/hop_trace.py).
 * Times are CLOCK_MONOTONIC nanoseconds (process.hrtime), the clock Python's perf_counter_ns reads,
 * so stamps of every thread and process line up.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

const DIR = process.env.PYSTAGE_HOP_TRACE ?? '';
export const TRACING = DIR !== '';

/** Rows kept per ring; older rows are overwritten (the tool traces tens of thousands of batches). */
const CAPACITY = 1 << 17;

/** A ring of fixed-width rows of numbers, allocated once. */
class Ring {
  private readonly rows: Float64Array;
  private next = 0;

  constructor(readonly fields: readonly string[]) {
    this.rows = new Float64Array(CAPACITY * fields.length);
  }

  /** Start a row; returns its index, for `set`. */
  add(): number {
    const row = this.next++ % CAPACITY;
    this.rows.fill(-1, row * this.fields.length, (row + 1) * this.fields.length);
    return row;
  }

  set(row: number, field: number, value: number): void {
    this.rows[row * this.fields.length + field] = value;
  }

  /** The newest row whose first field is `key`, searching back at most `depth` rows; -1 when none. */
  findRow(key: number, depth = 64): number {
    for (let k = 1; k <= Math.min(depth, this.next); k++) {
      const r = (this.next - k) % CAPACITY;
      if (this.rows[r * this.fields.length] === key) return r;
    }
    return -1;
  }

  toJSON(): { fields: readonly string[]; rows: number[][] } {
    const n = Math.min(this.next, CAPACITY);
    const first = this.next > CAPACITY ? this.next % CAPACITY : 0;
    const rows: number[][] = [];
    for (let k = 0; k < n; k++) {
      const r = (first + k) % CAPACITY;
      rows.push(Array.from(this.rows.subarray(r * this.fields.length, (r + 1) * this.fields.length)));
    }
    return { fields: this.fields, rows };
  }
}

export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

let gcRing: Ring | null = null;

/** Record this thread's GC pauses (start, duration, kind) on the hrtime clock. */
function observeGc(): void {
  if (gcRing !== null) return;
  const ring = new Ring(['start', 'ns', 'kind']);
  gcRing = ring;
  // performance.now() of this thread → hrtime ns: one offset, taken once.
  const offset = nowNs() - performance.now() * 1e6;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const row = ring.add();
      ring.set(row, 0, offset + e.startTime * 1e6);
      ring.set(row, 1, e.duration * 1e6);
      ring.set(row, 2, (e as { detail?: { kind?: number } }).detail?.kind ?? 0);
    }
  }).observe({ entryTypes: ['gc'] });
}

const MAIN_FIELDS = ['trace', 'partition', 'count', 'firstOffset', 'sent', 'replied', 'delivered'] as const;
const WORKER_FIELDS = ['trace', 'received', 'request', 'written', 'replyRead', 'returned', 'serverPid'] as const;
type Field<F extends readonly string[]> = F[number];

let mainRing: Ring | null = null;
let workerRing: Ring | null = null;
let nextTrace = 1;
/**
 * Worker: rows of tasks whose request is not written yet, oldest first (tasks and their requests keep
 * their order; the tool traces one model, so one request per task), and the rows by request id.
 */
const awaitingRequest: number[] = [];
const rowsByRequest = new Map<number, number>();

function field<F extends readonly string[]>(fields: F, name: Field<F>): number {
  return fields.indexOf(name);
}

/** Main thread: a batch leaves for its worker; returns its trace id (carried by the task) and row. */
export function batchSent(partition: number | null, count: number, firstOffset: number): { trace: number; row: number } {
  if (mainRing === null) {
    observeGc();
    mainRing = new Ring(MAIN_FIELDS);
    process.on('exit', () => dump('main'));
  }
  const row = mainRing.add();
  const trace = nextTrace++;
  mainRing.set(row, 0, trace);
  mainRing.set(row, 1, partition ?? -1);
  mainRing.set(row, 2, count);
  mainRing.set(row, 3, firstOffset);
  mainRing.set(row, 4, nowNs());
  return { trace, row };
}

/** Main thread: the batch's reply came back ('replied') or was handed to its sink ('delivered'). */
export function batchStamp(row: number, what: 'replied' | 'delivered'): void {
  mainRing?.set(row, field(MAIN_FIELDS, what), nowNs());
}

/** Worker: an exec task arrived. */
export function taskReceived(trace: number): void {
  if (workerRing === null) {
    observeGc();
    workerRing = new Ring(WORKER_FIELDS);
    process.on('exit', () => dump('worker'));
  }
  const row = workerRing.add();
  awaitingRequest.push(row);
  workerRing.set(row, 0, trace);
  workerRing.set(row, 1, nowNs());
}

/** Worker: request `id` was written to the socket (the oldest task without one; commands before any task are not traced). */
export function requestWritten(id: number): void {
  const row = awaitingRequest.shift();
  if (workerRing === null || row === undefined) return;
  rowsByRequest.set(id, row);
  workerRing.set(row, 2, id);
  workerRing.set(row, 3, nowNs());
}

/** Worker: the reply of request `id` was read off the socket. */
export function replyRead(id: number): void {
  const row = rowsByRequest.get(id);
  if (workerRing === null || row === undefined) return;
  rowsByRequest.delete(id);
  workerRing.set(row, 4, nowNs());
}

/** Worker: the task's reply goes back to the main thread. */
export function taskReturned(trace: number, serverPid: number | null): void {
  if (workerRing === null) return;
  // Tasks are answered in order, so this trace's row is at most a few rows back.
  const row = workerRing.findRow(trace);
  if (row < 0) return;
  workerRing.set(row, 5, nowNs());
  workerRing.set(row, 6, serverPid ?? -1);
}

/** Write this thread's rings to PYSTAGE_HOP_TRACE/<role>-<pid>-<threadId>.json (once; later calls rewrite it). */
export function dump(role: 'main' | 'worker'): void {
  const ring = role === 'main' ? mainRing : workerRing;
  if (!TRACING || ring === null) return;
  writeFileSync(join(DIR, `${role}-${process.pid}-${threadId}.json`), JSON.stringify({ role, pid: process.pid, threadId, hops: ring, gc: gcRing }));
}
