/**
 * The stage: partitions messages by key across Piscina workers, each owning one
 * Python server, and hands back every message's outcome.
 *
 * Pinning: each partition has its own Piscina pool of exactly one thread
 * (minThreads = maxThreads = 1, idleTimeout Infinity, atomics disabled so the
 * idle thread's event loop keeps serving its socket). A pool of one can only
 * give a task to that thread, so affinity holds by construction: no load
 * balancer can return a wrong or missing worker, no task of one partition
 * queues behind another's, and if Piscina replaces a crashed thread the lane
 * starts the replacement with the current models.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import {
  BadInputError, PystageError, RoutingError, StageClosedError,
  type ErrorRecord,
} from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { checkModelSpec, modelFile, resolveOptions, type ResolvedOptions, type StageOptions } from './options.js';
import { finish, PartitionLane, replyFailure, type Entry } from './partition-lane.js';
import type { InputLine } from './line-reader.js';
import { Partitioner } from './partitioner.js';
import { resolvePython } from './python-interpreter.js';
import { ResultQueue } from './result-queue.js';
import type { ItemOutcome, ModelSpec, PartitionStatus, WorkerConfig, WorkerReply, WorkerTask } from './worker-protocol.js';

/** One output of one model for one message. */
export interface StageOutput {
  kind: 'output';
  offset: number;
  key: unknown;
  partition: number;
  model: string;
  output: Record<string, unknown>;
}

/** A message (or one model's part of it) that produced an error instead of an output. */
export interface StageFailure {
  kind: 'error';
  offset: number;
  key: unknown;
  partition: number | null;
  model: string | null;
  /** The message as JSON text, or the raw input line. */
  input: string;
  error: ErrorRecord;
}

/** What `process` yields. Messages whose model returned None yield nothing (they are counted). */
export type StageRecord = StageOutput | StageFailure;

/** Counters of a stage since it was created. */
export interface StageStats {
  in: number;
  out: number;
  noOutput: number;
  errors: number;
  restarts: number;
  seconds: number;
  msgPerSec: number;
}

/** A message ready for a partition, or the reason it cannot go to one. */
type Prepared = { key: unknown; input: string; route: string | null } | { key: unknown; input: string; error: PystageError };

const serverScript = fileURLToPath(new URL('../../py/server.py', import.meta.url));
const workerFile = fileURLToPath(new URL('../workers/partition-worker.js', import.meta.url));

/** Start a stage: every partition's Python server up, every model loaded. Rejects with a typed error. */
export async function createStage(options: StageOptions): Promise<Stage> {
  const stage = new Stage(resolveOptions(options));
  await stage.start();
  return stage;
}

/** A running stage. Create it with `createStage`. */
export class Stage {
  readonly id = randomBytes(4).toString('hex');
  readonly logger: Logger;
  private readonly lanes: PartitionLane[] = [];
  private readonly pools: Piscina[] = [];
  private readonly partitioner: Partitioner;
  private readonly spoolDir: string;
  private models: ModelSpec[];
  private readonly counts = { in: 0, out: 0, noOutput: 0, errors: 0 };
  private readonly startedAt = performance.now();
  private closing = false;
  private python = '';
  private closed: Promise<void> | null = null;
  private readonly runs = new Set<Promise<void>>();
  /** Each running `process` call's way to stop reading its source. */
  private readonly stoppers = new Set<() => void>();
  private readonly killLeftovers = () => this.killServers();

  /** @internal Use createStage. */
  constructor(private readonly options: ResolvedOptions) {
    this.logger = createLogger(options.logLevel, { stage: this.id });
    this.partitioner = new Partitioner(options.partitions);
    this.models = options.models;
    // The real path: the server names its output files by real path, and a temp dir may be a symlink (macOS).
    this.spoolDir = realpathSync(mkdtempSync(join(tmpdir(), 'pystage-')));
  }

  get partitions(): number {
    return this.options.partitions;
  }

  /** @internal Spawn the pools and start every partition. */
  async start(): Promise<void> {
    const o = this.options;
    // Asking a wrapper for the real interpreter is slow: let the worker threads boot meanwhile.
    const python = resolvePython(o.python, o.startTimeoutMs);
    python.catch(() => {});
    process.once('exit', this.killLeftovers);
    for (let partition = 0; partition < o.partitions; partition++) {
      const config: WorkerConfig = {
        stageId: this.id, partition, pythonPath: o.pythonPath, serverScript,
        spoolDir: this.spoolDir, inlineLimit: o.inlineLimit, maxFrameBytes: o.maxFrameBytes,
        executeTimeoutMs: o.executeTimeoutMs, startTimeoutMs: o.startTimeoutMs, maxAttempts: o.maxAttempts,
        maxBatch: o.maxBatch, logLevel: o.logLevel,
      };
      const pool = new Piscina({
        filename: workerFile, workerData: config,
        minThreads: 1, maxThreads: 1, idleTimeout: Infinity, atomics: 'disabled',
        // Room for the pipelined exec tasks plus metadata commands queued behind them.
        concurrentTasksPerWorker: o.pipelineDepth + 2,
      });
      this.pools.push(pool);
      this.lanes.push(new PartitionLane(pool, {
        partition, maxBatch: o.maxBatch, pipelineDepth: o.pipelineDepth, maxInFlight: o.maxInFlight, inlineLimit: o.inlineLimit,
        startTask: () => ({ op: 'start', python: this.python, models: this.models }),
      }));
    }
    let executable: string;
    try {
      executable = await python;
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    this.python = executable;
    const replies = await Promise.all(this.lanes.map((lane) => lane.command({ op: 'start', python: executable, models: this.models })));
    const failure = replies.map(replyFailure).find((e) => e !== null);
    if (failure) {
      await this.shutdown();
      throw failure;
    }
    this.logger.info({ partitions: o.partitions, models: this.models.map((m) => m.name) }, 'stage ready');
  }

  /** Run messages (plain objects) through the stage; yields outputs and errors as they complete. */
  async *process(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<StageRecord> {
    for await (const batch of this.run(inBatches(source), (value) => this.prepareObject(value))) {
      for (const entry of batch) yield* toRecords(entry);
    }
  }

  /** @internal Run input lines (the CLI), a batch per read; completed entries keep outputs as JSON text. */
  processLines(source: AsyncIterable<InputLine[]>): AsyncIterable<Entry[]> {
    return this.run(source, (line) => this.prepareLine(line));
  }

  /** An object-mode Duplex for stream.pipeline(): write messages, read StageRecords. */
  stream(): Duplex {
    const input = new PassThrough({ objectMode: true });
    return Duplex.from({ writable: input, readable: Readable.from(this.process(input)) });
  }

  /** Load a new model on every partition; rejects with the first partition's typed error (all are in `errors`). */
  async addModel(spec: ModelSpec): Promise<void> {
    checkModelSpec(spec);
    const resolved = { ...spec, file: modelFile(spec.file, this.options.pythonPath) };
    await this.broadcast({ op: 'addModel', spec: resolved });
    this.models = [...this.models.filter((m) => m.name !== spec.name), resolved];
  }

  /** Reload a model from disk on every partition; a partition whose reload fails keeps the old model. */
  async updateModel(spec: ModelSpec): Promise<void> {
    checkModelSpec(spec);
    const resolved = { ...spec, file: modelFile(spec.file, this.options.pythonPath) };
    await this.broadcast({ op: 'updateModel', spec: resolved });
    this.models = this.models.map((m) => (m.name === spec.name ? resolved : m));
  }

  /** Unload a model on every partition. */
  async removeModel(name: string): Promise<void> {
    await this.broadcast({ op: 'removeModel', name });
    this.models = this.models.filter((m) => m.name !== name);
  }

  /** Call a model's `init(dataFile)` on every partition. */
  async initModel(name: string, dataFile: string): Promise<void> {
    await this.broadcast({ op: 'initModel', name, dataFile });
    this.models = this.models.map((m) => (m.name === name ? { ...m, initData: dataFile } : m));
  }

  /** Every partition's server status. */
  async status(): Promise<PartitionStatus[]> {
    return (await this.broadcast({ op: 'status' })) as PartitionStatus[];
  }

  /** Counters since the stage started. */
  stats(): StageStats {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const restarts = this.lanes.reduce((sum, lane) => sum + lane.restarts, 0);
    return { ...this.counts, restarts, seconds, msgPerSec: seconds > 0 ? this.counts.in / seconds : 0 };
  }

  /** Stop taking input, finish and emit every message in flight, stop every server, destroy the pools. */
  close(): Promise<void> {
    this.closing = true;
    for (const stop of this.stoppers) stop();
    this.closed ??= (async () => {
      await Promise.all(this.runs);
      await this.shutdown();
    })();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.command({ op: 'stop' })));
    await Promise.all(this.pools.map((pool) => pool.destroy()));
    this.killServers();
    process.off('exit', this.killLeftovers);
    rmSync(this.spoolDir, { recursive: true, force: true });
    this.logger.info(this.stats(), 'stage closed');
  }

  /** Last resort, also on process exit: SIGKILL every server pid a worker reported. */
  killServers(): void {
    for (const lane of this.lanes) {
      if (lane.serverPid === null) continue;
      try { process.kill(lane.serverPid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }

  private async broadcast(task: WorkerTask): Promise<unknown[]> {
    if (this.closing) throw new StageClosedError('the stage is closing; it takes no more commands');
    const replies = await Promise.all(this.lanes.map((lane) => lane.command(task)));
    const errors = replies.map(replyFailure);
    const first = errors.find((e) => e !== null);
    if (first) {
      (first as PystageError & { errors?: unknown }).errors = errors;
      throw first;
    }
    return replies.map((r) => (r as WorkerReply<unknown> & { ok: true }).value);
  }

  private prepareObject(value: unknown): Prepared {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const input = safeJson(value);
      return { key: null, input, error: new BadInputError(`a message must be a JSON object; got ${input.slice(0, 80)}`) };
    }
    const key = (value as Record<string, unknown>)[this.options.keyField];
    let input: string;
    try {
      input = JSON.stringify(value);
      if (key !== undefined && key !== null && typeof key !== 'string') JSON.stringify(key);
    } catch (err) {
      return { key: null, input: String(value), error: new BadInputError(`a message must be JSON-serialisable: ${(err as Error).message}`) };
    }
    return this.withRoute(value as Record<string, unknown>, key, input);
  }

  private prepareLine({ text: line, badUtf8 }: InputLine): Prepared {
    if (badUtf8) return { key: null, input: line, error: new BadInputError('line is not valid UTF-8') };
    if (line.trim() === '') return { key: null, input: line, error: new BadInputError('line is empty; expected one JSON object per line') };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      return { key: null, input: line, error: new BadInputError(`line is not valid JSON: ${(err as Error).message}`) };
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return { key: null, input: line, error: new BadInputError(`line is JSON but not an object (got ${Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'null' : `a ${typeof value}`})`) };
    }
    const key = (value as Record<string, unknown>)[this.options.keyField];
    return this.withRoute(value as Record<string, unknown>, key, line);
  }

  private withRoute(value: Record<string, unknown>, key: unknown, input: string): Prepared {
    const field = this.options.routeField;
    if (field === null) return { key, input, route: null };
    const route = value[field];
    if (typeof route !== 'string') {
      return { key, input, error: new RoutingError(`message has no string field "${field}" naming its model (got ${safeJson(route)})`) };
    }
    return { key, input, route };
  }

  /** The engine under process() and processLines(): batches in, completed entries out, in batches. */
  private run<T>(source: AsyncIterable<T[]>, prepare: (value: T) => Prepared): AsyncIterable<Entry[]> {
    if (this.closing) throw new StageClosedError('the stage is closing; it takes no more input');
    const results = new ResultQueue<Entry>();
    const reorder = this.options.ordered ? new Map<number, Entry>() : null;
    let nextOffset = 0;
    let outstanding = 0;
    let fed = false;
    let idle: (() => void) | null = null;
    let stopped = false;
    const emitLimit = this.options.maxInFlight * this.options.partitions;

    let reorderRoom: (() => void) | null = null;
    const sink = {
      complete: (entry: Entry) => {
        this.count(entry.result!);
        if (reorder === null) {
          results.push(entry);
        } else {
          reorder.set(entry.offset, entry);
          for (let next = reorder.get(nextOffset); next !== undefined; next = reorder.get(nextOffset)) {
            reorder.delete(nextOffset++);
            results.push(next);
          }
          if (reorderRoom !== null && reorder.size <= emitLimit / 2) {
            reorderRoom();
            reorderRoom = null;
          }
        }
        if (--outstanding === 0 && fed) idle?.();
      },
    };

    // Resolved by close() or by the reader going away: stop reading the source, even while it is quiet.
    let stopReading!: () => void;
    const stopSignal = new Promise<null>((resolve) => { stopReading = () => resolve(null); });
    this.stoppers.add(stopReading);

    const feed = async () => {
      let offset = 0;
      const iterator = source[Symbol.asyncIterator]();
      for (;;) {
        const next = await Promise.race([iterator.next(), stopSignal]);
        if (next === null) {
          void iterator.return?.(undefined)?.catch(() => {});
          break;
        }
        if (next.done) break;
        for (const value of next.value) {
          this.counts.in++;
          outstanding++;
          const prepared = prepare(value);
          const entry: Entry = {
            offset: offset++, key: prepared.key ?? null, input: prepared.input, route: null,
            partition: null, result: null, sink,
          };
          if ('error' in prepared) {
            finish(entry, null, prepared.error.toRecord());
            continue;
          }
          entry.route = prepared.route;
          const lane = this.lanes[this.partitioner.partitionOf(prepared.key)]!;
          lane.push(entry);
          if (lane.full) await lane.waitForRoom();
        }
        if (results.size > emitLimit) await results.waitForRoom(emitLimit / 2);
        if (reorder !== null && reorder.size > emitLimit && !stopped) {
          await new Promise<void>((resolve) => { reorderRoom = resolve; });
        }
        // Checked after a whole batch is queued: a message read from the source is never dropped.
        if (this.closing || stopped) break;
      }
      fed = true;
      if (outstanding > 0) await new Promise<void>((resolve) => { idle = resolve; });
    };

    const running = feed().then(() => results.end(), (err) => results.end(err));
    this.runs.add(running);
    void running.finally(() => {
      this.runs.delete(running);
      this.stoppers.delete(stopReading);
    });

    return {
      [Symbol.asyncIterator]: async function* () {
        try {
          yield* results;
        } finally {
          // The reader stopped early: stop reading the source, and never wait for this reader again.
          stopped = true;
          stopReading();
          results.abandon();
          reorderRoom?.();
        }
      },
    };
  }

  private count(result: ItemOutcome[] | ErrorRecord): void {
    if (!Array.isArray(result)) {
      this.counts.errors++;
      return;
    }
    for (const outcome of result) {
      if ('error' in outcome) this.counts.errors++;
      else if (outcome.output === null) this.counts.noOutput++;
      else this.counts.out++;
    }
  }
}

/** Batches of a source: a sync iterable is chunked without waiting; an async one passes values as they come. */
async function* inBatches<T>(source: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T[]> {
  if (Symbol.iterator in source) {
    let batch: T[] = [];
    for (const value of source) {
      batch.push(value);
      if (batch.length === 256) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    return;
  }
  for await (const value of source) yield [value];
}

/** The API's view of a completed entry: parsed outputs and error records. */
function toRecords(c: Entry): StageRecord[] {
  const result = c.result!;
  if (!Array.isArray(result)) {
    return [{ kind: 'error', offset: c.offset, key: c.key, partition: c.partition, model: null, input: c.input, error: result }];
  }
  const records: StageRecord[] = [];
  for (const outcome of result) {
    if ('error' in outcome) {
      records.push({ kind: 'error', offset: c.offset, key: c.key, partition: c.partition, model: outcome.model, input: c.input, error: outcome.error });
    } else if (outcome.output !== null) {
      records.push({ kind: 'output', offset: c.offset, key: c.key, partition: c.partition!, model: outcome.model, output: JSON.parse(outcome.output) });
    }
  }
  return records;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

