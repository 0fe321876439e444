/**
 * What the main thread and a partition worker say to each other through Piscina.
 * Errors travel as ErrorRecord (Piscina drops error classes); see errors.ts.
 */
import type { ErrorRecord } from './errors.js';

/** A Python model as the stage knows it: enough to load it again after a restart. */
export interface ModelSpec {
  /** The name messages and commands use. */
  name: string;
  /** The model's file, relative to the python path (or absolute inside it). */
  file: string;
  /** The class to instantiate; by default the file's only class with an `execute` method. */
  className?: string;
  /** Passed to the class's constructor as a dict. */
  options?: Record<string, unknown>;
  /** A data file passed to the model's `init(path)` after loading. */
  initData?: string;
}

/** Everything a partition worker needs to run its Python server (its workerData). */
export interface WorkerConfig {
  stageId: string;
  partition: number;
  pythonPath: string;
  serverScript: string;
  spoolDir: string;
  inlineLimit: number;
  maxFrameBytes: number;
  executeTimeoutMs: number;
  startTimeoutMs: number;
  maxAttempts: number;
  maxBatch: number;
  logLevel: string;
}

/** One task from the main thread to a partition worker. */
export type WorkerTask =
  /** Start the partition's server with these models (sent again if Piscina replaced a crashed thread). */
  | { op: 'start'; python: string; models: ModelSpec[] }
  | {
      op: 'exec';
      /**
       * The messages' JSON texts joined by ",\n" (see INPUT_SEPARATOR): one string clones far faster
       * than an array of them, and the worker splices it into executeBatch as is.
       */
      inputs: string;
      count: number;
      /** Per input, the one model to run; null runs every model, in order. */
      routes: (string | null)[] | null;
      /** True if some input may exceed the inline limit (then the worker looks at each). */
      mayBeBig: boolean;
    }
  | { op: 'addModel' | 'updateModel'; spec: ModelSpec }
  | { op: 'removeModel'; name: string }
  | { op: 'initModel'; name: string; dataFile: string }
  | { op: 'status' }
  | { op: 'stop' };

/** Joins the inputs of an exec task. JSON texts never contain a raw newline, so the split is unambiguous. */
export const INPUT_SEPARATOR = ',\n';

/** What one model made of one message. */
export type ItemOutcome =
  | { model: string; output: string }
  | { model: string; output: null }
  | { model: string; error: ErrorRecord };

/** What every task returns: Piscina loses thrown errors' classes, so failures are values. */
export type WorkerReply<T> =
  | { ok: true; value: T; restarts: number; serverPid: number | null }
  | { ok: false; error: ErrorRecord; restarts: number; serverPid: number | null };

/**
 * The value of an exec task, as one string for the same reason as its inputs: one line per outcome,
 * `o<output JSON>`, `n` (no output) or `e<ErrorRecord JSON>`. Without routes, input i's outcome for
 * models[m] is line i * models.length + m; with routes, line i is input i's only outcome.
 */
export interface ExecValue {
  models: string[];
  outcomes: string;
}

/** One partition's answer to `status`. */
export interface PartitionStatus {
  partition: number;
  uniq: string;
  serverPid: number | null;
  restarts: number;
  server: Record<string, unknown>;
}
