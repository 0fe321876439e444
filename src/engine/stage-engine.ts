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
import { rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InvalidOptionError, StageClosedError } from '../api/errors.js';
import { registerContextMetrics } from '../context/context-metrics.js';
import { HostServices } from '../context/host-services.js';
import { SharedCache } from '../context/shared-cache.js';
import { StateTable, type StateSnapshot } from '../context/state-table.js';
import type { LineBatch } from '../cli/line-reader.js';
import { createLogger } from '../telemetry/logger.js';
import { StageMetrics } from '../telemetry/metrics.js';
import type { DurableState } from '../state/durable-state.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { checkModelSpec, modelFile, type ResolvedOptions } from '../api/options.js';
import { commandValues, PartitionLane, replyFailure } from './partition-lane.js';
import { Partitioner } from './partitioner.js';
import { killProcessGroup } from '../python/process-group.js';
import { resolvePython } from '../python/python-interpreter.js';
import { createSpoolDir, removeOrphanedSpoolDirs, type SpoolDir } from '../python/spool-dir.js';
import { toRecords, type StageRecord } from '../records/records.js';
import type { PartitionLoad, StageStats } from '../api/stage.js';
import type { BatchRange } from './ordered-merge.js';
import { StageRun, type RunSkip } from './stage-run.js';
import { inBatches } from './in-batches.js';
import { stageStream } from './stage-stream.js';
import { workerConfig, addCounts, type ModelSpec, type PartitionHost, type PartitionStatus, type WorkerConfig, type WorkerTask } from './worker-protocol.js';

const serverScript = fileURLToPath(new URL('../../../py/server.py', import.meta.url));
const workerFile = fileURLToPath(new URL('../../workers/partition-worker.js', import.meta.url));

/**
 * The engine of a running stage: its partitions' lanes and pools, the runs feeding them, the
 * commands broadcast to them, counters and shutdown. `Stage` (src/api/stage.ts) is its public face.
 */
export class StageEngine {
  readonly id = randomBytes(4).toString('hex');
  /** JSON lines on stderr at the stage's logLevel. */
  readonly logger: StageLogger;
  private readonly lanes: PartitionLane[] = [];
  private readonly pools: Piscina[] = [];
  private readonly partitioner: Partitioner;
  private readonly spool: SpoolDir;
  private models: ModelSpec[];
  private readonly counts = { in: 0, out: 0, noOutput: 0, errors: 0, keyless: 0 };
  private readonly startedAt = performance.now();
  private closing = false;
  private python = '';
  private closed: Promise<void> | null = null;
  private readonly runs = new Set<StageRun>();
  private readonly running = new Set<Promise<void>>();
  private readonly killLeftovers = () => this.killServers();
  private readonly metrics: StageMetrics | null;
  private servedAt: string | null = null;
  /** The cache every partition's models and the host share (`self.context.cache` in Python). */
  readonly cache: SharedCache;
  private readonly host: HostServices;
  /** Each partition's state as of its last delivered batch: survives its worker thread. */
  private states: StateTable[] = [];
  /** With stateDir: the store and what is consumed since its last checkpoint. */
  durable: DurableState | null = null;

  constructor(private readonly options: ResolvedOptions) {
    this.logger = createLogger(options.logLevel, { stage: this.id });
    this.partitioner = new Partitioner(options.partitions);
    this.models = options.models;
    this.metrics = options.metricsPort === null ? null : new StageMetrics({
      messagesIn: () => this.counts.in,
      partitions: () => this.lanes.map((lane) => ({
        partition: lane.partition, queued: lane.queued, inFlight: lane.inFlight, serverPid: lane.serverPid,
        recovery: lane.recovery, threadReplacements: lane.threadReplacements,
      })),
    });
    const orphans = removeOrphanedSpoolDirs();
    if (orphans.length > 0) this.logger.info({ removed: orphans }, 'removed spool directories of pystage processes that are gone');
    this.spool = createSpoolDir();
    this.cache = new SharedCache(options.cacheMaxEntries, options.cacheMaxBytes);
    this.host = new HostServices(options.handlers, this.cache, this.logger);
    if (this.metrics) {
      registerContextMetrics(this.metrics.registry, {
        states: () => this.states.map((s, partition) => ({ partition, bytes: s.bytes, keys: s.keys })),
        cache: () => this.cache.stats(),
        hostRequests: () => this.host.stats(),
      });
    }
  }

  /** A read-only snapshot of a partition's state: model name to { key: value }, as of its last emitted output. */
  state(partition: number): Record<string, Record<string, unknown>> {
    const table = this.states[partition];
    if (table === undefined) throw new InvalidOptionError(`there is no partition ${partition}: partitions are 0 to ${this.states.length - 1}`);
    return table.read();
  }

  /** Replace a partition's state behind every message already added to it (shard mode: a shard taken over); later ones see it. */
  async loadState(partition: number, snapshot: StateSnapshot): Promise<void> {
    const failure = replyFailure(await this.lanes[partition]!.command({ op: 'loadState', state: snapshot }));
    if (failure !== null) throw failure;
  }

  /** What a partition's (new) worker thread starts with: a port to the host, and the state to restore. */
  private partitionHost(partition: number): PartitionHost {
    return { port: this.host.connect(), state: this.states[partition]!.snapshot() };
  }

  /** Where Prometheus metrics are served (`metricsPort`), e.g. `http://127.0.0.1:9464/metrics`; null when not. */
  get metricsUrl(): string | null {
    return this.servedAt;
  }

  /** The registry /metrics serves, for metrics of the code around the stage (shard mode); null without metricsPort. */
  get metricsRegistry(): StageMetrics['registry'] | null { return this.metrics?.registry ?? null; }

  get partitions(): number {
    return this.options.partitions;
  }

  /** Spawn the pools and start every partition; on failure everything started is stopped again. */
  async start(): Promise<void> {
    const o = this.options;
    // Asking a wrapper for the real interpreter is slow: let the worker threads boot meanwhile.
    const python = resolvePython(o.python, o.startTimeoutMs);
    python.catch(() => {});
    process.once('exit', this.killLeftovers);
    if (o.stateDir !== null) {
      try {
        // Loaded lazily: a stage without stateDir never loads lmdb.
        const restored = await (await import('../state/state-restore.js')).openStageState(o, this.logger, this.metrics?.registry ?? null);
        this.states = restored.tables;
        this.durable = restored.durable;
      } catch (err) {
        process.off('exit', this.killLeftovers);
        rmSync(this.spool.path, { recursive: true, force: true });
        void this.spool.release();
        throw err;
      }
    }
    for (let partition = 0; partition < o.partitions; partition++) {
      const config: WorkerConfig = workerConfig(o, this.id, partition, this.spool.path, serverScript);
      const state = this.states[partition] ?? new StateTable();
      this.states[partition] = state;
      const pool = new Piscina({
        filename: workerFile, workerData: config,
        minThreads: 1, maxThreads: 1, idleTimeout: Infinity, atomics: 'disabled',
        // Room for the pipelined exec tasks plus metadata commands queued behind them.
        concurrentTasksPerWorker: o.pipelineDepth + 2,
      });
      this.pools.push(pool);
      this.lanes.push(new PartitionLane(pool, {
        partition, maxBatch: o.maxBatch, maxBatchBytes: o.maxBatchBytes, batchTargetMs: o.batchTargetMs,
        pipelineDepth: o.pipelineDepth, maxInFlight: o.maxInFlight, maxInFlightBytes: o.maxInFlightBytes, maxInFlightMs: o.maxInFlightMs,
        startTask: () => ({ op: 'start', python: this.python, models: this.models, host: this.partitionHost(partition) }),
        onStateChanges: (changes) => state.apply(changes),
        onStateLoaded: (snapshot) => state.load(snapshot),
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
    const replies = await Promise.all(this.lanes.map((lane) => lane.command({ op: 'start', python: executable, models: this.models, host: this.partitionHost(lane.partition) })));
    const failure = replies.map(replyFailure).find((e) => e !== null);
    if (failure) {
      await this.shutdown();
      throw failure;
    }
    if (this.metrics !== null) {
      try {
        this.servedAt = await this.metrics.listen(o.metricsPort!, o.metricsHost);
      } catch (err) {
        await this.shutdown();
        throw err;
      }
      this.logger.info({ metricsUrl: this.servedAt }, 'serving Prometheus metrics');
    }
    // Checkpoints begin once the stage is up (the CLI ties its files to them before any timer can fire).
    this.durable?.start(o.checkpointIntervalMs);
    this.logger.info({ partitions: o.partitions, models: this.models.map((m) => m.name) }, 'stage ready');
  }

  /** Resolves once the state as of every record already yielded is committed and flushed to disk (stateDir). */
  async checkpoint(): Promise<void> {
    if (this.durable === null) throw new InvalidOptionError('checkpoint() needs a stage created with stateDir');
    await this.durable.checkpointNow();
  }

  /** Run messages (plain objects) through the stage; yields outputs and errors as they complete. */
  async *process(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<StageRecord> {
    for await (const ranges of this.startRun((run) => run.runValues(inBatches(source)))) {
      for (const range of ranges) {
        yield* toRecords(range);
        // The batch's last record was taken: its state changes belong to the next checkpoint.
        if (range.to === range.batch.count) this.durable?.consumed(range.batch);
      }
    }
  }

  /** Run input lines (the CLI, the Redis runner); completed messages come back as ranges of batches, outputs as bytes. */
  /** The longest line a reader should hand over whole (maxMessageBytes). */
  get maxLineBytes(): number { return this.options.maxMessageBytes; }

  processLines(source: AsyncIterable<LineBatch>, firstOffset = 0): AsyncIterable<BatchRange[]> {
    return this.startRun((run) => run.runLines(source), firstOffset);
  }

  /** A resumed CLI run: lines a checkpoint already reflects, per partition (set before processLines). */
  resumeSkip: RunSkip | null = null;

  /** A Duplex for stream.pipeline(): write messages or JSON-lines bytes, read StageRecords (src/engine/stage-stream.ts). */
  stream(): Duplex {
    return stageStream(this);
  }

  /** Load a new model on every partition; rejects with the first partition's typed error (all are in `errors`). */
  async addModel(spec: ModelSpec): Promise<void> {
    checkModelSpec(spec);
    const resolved = { ...spec, file: modelFile(spec.file, this.options.pythonPath) };
    if (resolved.initData !== undefined) resolved.initData = modelFile(resolved.initData, this.options.pythonPath);
    await this.broadcast({ op: 'addModel', spec: resolved });
    this.models = [...this.models.filter((m) => m.name !== spec.name), resolved];
  }

  /** Reload a model from disk on every partition; a partition whose reload fails keeps the old model. */
  async updateModel(spec: ModelSpec): Promise<void> {
    checkModelSpec(spec);
    const resolved = { ...spec, file: modelFile(spec.file, this.options.pythonPath) };
    if (resolved.initData !== undefined) resolved.initData = modelFile(resolved.initData, this.options.pythonPath);
    await this.broadcast({ op: 'updateModel', spec: resolved });
    this.models = this.models.map((m) => (m.name === spec.name ? resolved : m));
  }

  /** Unload a model on every partition. */
  async removeModel(name: string): Promise<void> {
    await this.broadcast({ op: 'removeModel', name });
    this.models = this.models.filter((m) => m.name !== name);
    this.states.forEach((state, partition) => {
      this.durable?.deleted(partition, name, state.keysOf(name));
      state.drop(name);
    });
  }

  /** Call a model's `init(dataFile)` on every partition. */
  async initModel(name: string, dataFile: string): Promise<void> {
    dataFile = modelFile(dataFile, this.options.pythonPath);
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
    const cache = this.cache.stats();
    const host = this.host.stats();
    const restartCauses: Record<string, number> = {};
    const reconnectCauses: Record<string, number> = {};
    for (const lane of this.lanes) {
      addCounts(restartCauses, lane.recovery.restartCauses);
      addCounts(reconnectCauses, lane.recovery.reconnectCauses);
      if (lane.threadReplacements > 0) addCounts(restartCauses, { 'worker-thread': lane.threadReplacements });
    }
    return {
      ...this.counts, restarts, restartCauses, reconnectCauses, seconds, msgPerSec: seconds > 0 ? this.counts.in / seconds : 0,
      stateBytes: this.states.reduce((sum, s) => sum + s.bytes, 0), stateKeys: this.states.reduce((sum, s) => sum + s.keys, 0),
      cacheEntries: cache.entries, cacheBytes: cache.bytes, cacheEvictions: cache.evictions,
      hostRequests: host.calls + host.cacheOps, hostRequestErrors: host.failed,
    };
  }

  /** Every partition's queued and in-flight messages right now. */
  load(): PartitionLoad[] {
    return this.lanes.map((lane) => ({ partition: lane.partition, queued: lane.queued, inFlight: lane.inFlight }));
  }

  /** Stop taking input, finish and emit every message in flight, stop every server, destroy the pools. */
  close(): Promise<void> {
    this.closing = true;
    for (const run of this.runs) run.stop();
    this.closed ??= (async () => {
      await Promise.all(this.running);
      try {
        // The API's last checkpoint; the CLI takes its own once its files are written (a resumable run).
        if (this.durable !== null && !this.durable.resumable) await this.durable.finish();
      } finally {
        await this.shutdown();
      }
    })();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    // A stage that failed to start never reached its owner: its store is closed here.
    if (this.durable?.resumable === false) await this.durable.close().catch(() => {});
    await Promise.all(this.lanes.map((lane) => lane.command({ op: 'stop' })));
    await Promise.all(this.pools.map((pool) => pool.destroy()));
    await this.metrics?.close();
    this.host.close();
    this.killServers();
    process.off('exit', this.killLeftovers);
    rmSync(this.spool.path, { recursive: true, force: true });
    await this.spool.release();
    this.logger.info(this.stats(), 'stage closed');
  }

  /** Last resort, also on process exit (a second signal): SIGKILL the process group of every server a worker reported. */
  killServers(): void {
    for (const lane of this.lanes) killProcessGroup(lane.serverPid);
  }

  private async broadcast(task: WorkerTask): Promise<unknown[]> {
    if (this.closing) throw new StageClosedError('the stage is closing; it takes no more commands');
    return commandValues(await Promise.all(this.lanes.map((lane) => lane.command(task))));
  }


  /** Start a run over a source; its completed ranges are read from the returned iterable. */
  private startRun(feed: (run: StageRun) => Promise<void>, firstOffset = 0): AsyncIterable<BatchRange[]> {
    if (this.closing) throw new StageClosedError('the stage is closing; it takes no more input');
    const run = new StageRun({
      lanes: this.lanes, partitioner: this.partitioner, keyField: this.options.keyField, routeField: this.options.routeField,
      ordered: this.options.ordered, maxMessageBytes: this.options.maxMessageBytes, emitLimit: this.options.maxInFlight * this.options.partitions, counts: this.counts,
      firstOffset,
      skip: this.resumeSkip,
      metrics: this.metrics,
      closing: () => this.closing,
      onFirstKeyless: () => this.logger.warn(
        { keyField: this.options.keyField },
        `a message has no "${this.options.keyField}" field (or it is null): such messages are spread round-robin across partitions and keep no order; the summary counts them as "keyless". Pick the key field with --key / keyField`,
      ),
    });
    this.runs.add(run);
    const running = feed(run).then(() => run.results.end(), (err: unknown) => run.results.end(err));
    this.running.add(running);
    void running.finally(() => {
      this.running.delete(running);
      this.runs.delete(run);
    });
    return {
      [Symbol.asyncIterator]: async function* () {
        try {
          yield* run.results;
        } finally {
          // The reader stopped early: stop reading the source, and never wait for this reader again.
          run.abandon();
        }
      },
    };
  }
}
