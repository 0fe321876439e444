/**
 * CPU per message, by thread: the API pushing `count` messages as fast as the stage takes them,
 * inside the bench's child process (runners.ts), with every thread's utime + stime read from
 * /proc/self/task/<tid>/stat and each Python server's from /proc/<pid>/stat just before the first
 * message and just after the last output (start-up and close excluded).
 *
 * Threads are told apart by when they appeared: the main thread is the process's own id; the threads
 * that createStage started are the partitions' worker threads (Piscina's, one per partition); every
 * other node thread (V8's platform threads, which do most of the GC work, libuv's pool) is "other".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { messages } from './input.js';
import type { Stage } from '../src/index.js';

/** USER_HZ: /proc's CPU fields count hundredths of a second. */
export const TICKS_PER_SECOND = 100;

export interface CpuPerMessage {
  partitions: number;
  messages: number;
  seconds: number;
  /** µs of CPU per message. */
  mainUs: number;
  workersUs: number;
  otherUs: number;
  /** All node threads together. */
  nodeUs: number;
  /** All the Python servers together. */
  pythonUs: number;
}

/** utime + stime of the /proc stat file at `path`, in ticks; 0 when it is gone. */
export function ticksOf(path: string): number {
  try {
    const text = readFileSync(path, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0; // a thread that ended in between: its CPU is in neither reading
  }
}

/** utime + stime ticks of every thread of this process, by thread id. */
export function threadTicks(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) out.set(Number(tid), ticksOf(`/proc/self/task/${tid}/stat`));
  return out;
}

async function serverTicks(stage: Stage): Promise<number> {
  let sum = 0;
  for (const p of await stage.status()) if (p.serverPid !== null) sum += ticksOf(`/proc/${p.serverPid}/stat`);
  return sum;
}

/** Run `count` messages through a stage made by `makeStage`; CPU per message by thread. */
export async function apiCpu(count: number, makeStage: () => Promise<Stage>): Promise<CpuPerMessage> {
  const before = new Set(threadTicks().keys());
  const stage = await makeStage();
  const stageThreads = new Set([...threadTicks().keys()].filter((tid) => !before.has(tid)));
  const t0 = threadTicks();
  const py0 = await serverTicks(stage);
  const started = performance.now();
  let outputs = 0;
  for await (const record of stage.process(messages(count))) if (record.kind === 'output') outputs++;
  const seconds = (performance.now() - started) / 1000;
  const t1 = threadTicks();
  const py1 = await serverTicks(stage);
  await stage.close();
  if (outputs !== count) throw new Error(`cpu per message: ${outputs} outputs for ${count} messages`);
  let main = 0, workers = 0, other = 0;
  for (const [tid, ticks] of t1) {
    const used = ticks - (t0.get(tid) ?? 0);
    if (tid === process.pid) main += used;
    else if (stageThreads.has(tid)) workers += used;
    else other += used;
  }
  const us = (ticks: number) => (ticks / TICKS_PER_SECOND) * 1e6 / count;
  return {
    partitions: stage.partitions, messages: count, seconds,
    mainUs: us(main), workersUs: us(workers), otherUs: us(other), nodeUs: us(main + workers + other), pythonUs: us(py1 - py0),
  };
}

/** The CLI's CPU per message: node (all threads) and its main thread, with start-up and close taken out. */
export interface CliCpuPerMessage {
  partitions: number;
  messages: number;
  nodeUs: number;
  mainUs: number;
  pythonUs: number;
}

/**
 * How many partitions one stage's main thread can feed with a core per partition: a server busy all the
 * time runs at 1 / pythonUs messages per second (each message costs one server pythonUs), the main thread
 * at 1 / mainUs. Counting the server alone per core (not its worker thread) keeps the estimate low.
 */
export function partitionsFed(c: CpuPerMessage): number {
  return c.pythonUs / c.mainUs;
}
