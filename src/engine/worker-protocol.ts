/**
 * What the main thread and a partition worker say to each other through Piscina.
 * Errors travel as ErrorRecord (Piscina drops error classes); see errors.ts.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Outcomes } from './batch.js';
import type { ErrorRecord } from '../api/errors.js';
import type { StateSnapshot } from '../context/state-table.js';
import type { ResolvedOptions } from '../api/options.js';
import { mathThreadsPerServer } from '../python/math-threads.js';

/** A Python model as the stage knows it: enough to load it again after a restart. */
export interface ModelSpec {
  /** The name messages and commands use. */
  name: string;
  /** The model's file: absolute, or relative to the current directory (the API also looks in the python path). */
  file: string;
  /** The class to instantiate; by default the file's only class with an `execute` method. */
  className?: string;
  /** Passed to the class's constructor as a dict. */
  options?: Record<string, unknown>;
  /** A data file passed to the model's `init(path)` after loading. */
  initData?: string;
  /** Give a model with `execute_batch` whole batches (default true); false runs it one message at a time. */
  batch?: boolean;
  /**
   * The model's state keys expire this many ms after they were written (judged at the time of the
   * message's batch), unless the write names its own `ttl`. Default: never.
   */
  stateTtlMs?: number;
}

/** Everything a partition worker needs to run its Python server (its workerData). */
export interface WorkerConfig {
  stageId: string;
  partition: number;
  /** The first python path entry (relative names resolve against it). */
  pythonPath: string;
  /** Further python path entries, in order. */
  extraPythonPaths: string[];
  /** Further folders model and data files may lie in. */
  allowRoots: string[];
  serverScript: string;
  spoolDir: string;
  inlineLimit: number;
  /** A model output larger than this (JSON bytes) fails its message. */
  maxOutputBytes: number;
  maxFrameBytes: number;
  executeTimeoutMs: number;
  loadTimeoutMs: number;
  startTimeoutMs: number;
  maxAttempts: number;
  logLevel: string;
  /** NaN and infinities in outputs become null instead of failing the message. */
  nanAsNull: boolean;
  /** Threads for numpy's BLAS/OpenMP in each server (see math-threads.ts). */
  mathThreads: number;
  /** The message field holding the key (a host request's context names the message's key). */
  keyField: string;
  /** The partition's state may take this many bytes (the server refuses a write beyond it). */
  maxStateBytes: number;
  /** How long a model's host request waits for its answer unless it names its own timeout. */
  hostRequestTimeoutMs: number;
}

/**
 * What a (replacement) worker thread gets from the main thread with its start task: the port to
 * the host's handlers and cache, and the partition's state as of its last emitted output.
 */
export interface PartitionHost {
  port: MessagePort;
  state: StateSnapshot;
}

/** One task from the main thread to a partition worker. */
export type WorkerTask =
  /** Start the partition's server with these models (sent again if Piscina replaced a crashed thread). */
  | { op: 'start'; python: string; models: ModelSpec[]; host?: PartitionHost }
  | ExecTask
  | { op: 'addModel' | 'updateModel'; spec: ModelSpec }
  | { op: 'removeModel'; name: string }
  | { op: 'initModel'; name: string; dataFile: string }
  | { op: 'status' }
  /** Replace the partition's state (shard mode: a shard taken over starts from its stored state), behind every message before it. */
  | { op: 'loadState'; state: StateSnapshot }
  | { op: 'stop' };

/**
 * Messages to run, as bytes (transferred, not cloned): `data` holds their JSON texts with `,\n`
 * between them (see SEPARATOR in batch.ts), `spans` each one's start and end in `data`.
 */
export interface ExecTask {
  op: 'exec';
  data: Uint8Array;
  spans: Int32Array;
  count: number;
  /** Per message, the one model to run; null runs every model, in order. */
  routes: (string | null)[] | null;
  /**
   * The batch's time (ms since the epoch), stamped once when it first leaves: the server judges state
   * expiry against it, so a batch sent again sees the state as its first run did.
   */
  now: number;
  /** Its id in the hop trace (bench/tools/hop-trace.ts), when tracing. */
  trace?: number;
}

/** A partition's recoveries so far, for metrics: restarts by cause, messages sent again after a break. */
export interface RecoveryCounts {
  /** Server restarts by the reason its connection broke (closed, timeout, bad-frame, ...). */
  restartCauses: Record<string, number>;
  /** Reconnects to a server that was still alive, by the reason its connection broke (bad-frame, out-of-order, ...). */
  reconnectCauses: Record<string, number>;
  /** Messages sent to a server again because the one running them broke (or a reply before theirs was unusable). */
  reexecuted: number;
  /** Replies that arrived but could not be used (their messages failed; the server was restored). */
  unusableReplies?: number;
}

/** Add each cause's count of `from` into `into` (a stage's causes summed over its partitions). */
export function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [cause, n] of Object.entries(from)) into[cause] = (into[cause] ?? 0) + n;
}

/** What every task returns: Piscina loses thrown errors' classes, so failures are values. */
export type WorkerReply<T> =
  | { ok: true; value: T; restarts: number; serverPid: number | null; recovery?: RecoveryCounts }
  | { ok: false; error: ErrorRecord; restarts: number; serverPid: number | null; recovery?: RecoveryCounts };

/** The value of an exec task: the batch's Outcomes (batch.ts), its buffers transferred back. */
export type ExecValue = Outcomes;

/** One partition's answer to `status`. */
export interface PartitionStatus {
  partition: number;
  uniq: string;
  serverPid: number | null;
  restarts: number;
  server: Record<string, unknown>;
}

/** What partition `partition`'s worker is started with (its workerData). */
export function workerConfig(o: ResolvedOptions, stageId: string, partition: number, spoolDir: string, serverScript: string): WorkerConfig {
  return {
    stageId, partition, pythonPath: o.pythonPath[0]!, extraPythonPaths: o.pythonPath.slice(1), allowRoots: o.allowRoots, serverScript,
    spoolDir, inlineLimit: o.inlineLimit, maxOutputBytes: o.maxOutputBytes, maxFrameBytes: o.maxFrameBytes,
    executeTimeoutMs: o.executeTimeoutMs, loadTimeoutMs: o.loadTimeoutMs, startTimeoutMs: o.startTimeoutMs, maxAttempts: o.maxAttempts,
    logLevel: o.logLevel, nanAsNull: o.nanAsNull, mathThreads: mathThreadsPerServer(o.partitions),
    keyField: o.keyField, maxStateBytes: o.maxStateBytes, hostRequestTimeoutMs: o.hostRequestTimeoutMs,
  };
}
