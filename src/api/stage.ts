/**
 * The public face of a running stage: a small class over a private engine (src/engine/stage-engine.ts),
 * as piscina's `Piscina` sits over its `ThreadPool`. Everything a user calls is here, with its
 * contract; how it is done (lanes, pools, runs, shutdown) is the engine's. The CLI and the Redis
 * runner reach the engine's line path through `stageEngine` (src/engine/stage-internals.ts), which the
 * package does not export.
 */
import type { Duplex } from 'node:stream';
import { resolveOptions, type StageOptions } from './options.js';
import type { StageRecord } from '../records/records.js';
import type { SharedCache } from '../context/shared-cache.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { StageEngine } from '../engine/stage-engine.js';
import { registerEngine } from '../engine/stage-internals.js';
import type { ModelSpec, PartitionStatus } from '../engine/worker-protocol.js';

export { StageOutput, type StageFailure, type StageRecord } from '../records/records.js';

/** One partition's load right now. */
export interface PartitionLoad {
  partition: number;
  /** Messages read and waiting on the main thread for their batch to be sent. */
  queued: number;
  /** Messages sent to the partition's worker and Python server, not answered yet. */
  inFlight: number;
}

/** Counters of a stage since it was created. */
export interface StageStats {
  in: number;
  out: number;
  noOutput: number;
  errors: number;
  /** Messages without a key (no key field, or null): spread round-robin, so their relative order is not kept. */
  keyless: number;
  restarts: number;
  /** Server restarts and reconnects (to a server still alive) by cause: `timeout`, `closed`, `bad-frame`, `worker-thread`, … */
  restartCauses: Record<string, number>;
  reconnectCauses: Record<string, number>;
  seconds: number;
  msgPerSec: number;
  /** Bytes and keys of every partition's state (`self.context.state`), as of the last emitted outputs. */
  stateBytes: number;
  stateKeys: number;
  /** The shared cache: entries, bytes, and entries evicted to stay within its limits. */
  cacheEntries: number;
  cacheBytes: number;
  cacheEvictions: number;
  /** Host requests (`self.context.request`) answered, and those answered with an error (cache errors too). */
  hostRequests: number;
  hostRequestErrors: number;
}


/** Start a stage: every partition's Python server up, every model loaded. Rejects with a typed error. */
export async function createStage(options: StageOptions): Promise<Stage> {
  const engine = new StageEngine(resolveOptions(options));
  await engine.start();
  const stage = new Stage(engine);
  registerEngine(stage, engine);
  return stage;
}

/** A running stage. Create it with `createStage`. */
export class Stage {
  readonly #engine: StageEngine;

  /** Use createStage. (The parameter's type is kept out of the public declarations on purpose.) */
  constructor(engine: object) {
    this.#engine = engine as StageEngine;
  }

  /** A random id naming this stage in logs and in its servers' command lines. */
  get id(): string {
    return this.#engine.id;
  }

  /** JSON lines on stderr at the stage's logLevel. */
  get logger(): StageLogger {
    return this.#engine.logger;
  }

  /** The cache every partition's models and the host share (`self.context.cache` in Python). */
  get cache(): SharedCache {
    return this.#engine.cache;
  }

  /** Where Prometheus metrics are served (`metricsPort`), e.g. `http://127.0.0.1:9464/metrics`; null when not. */
  get metricsUrl(): string | null {
    return this.#engine.metricsUrl;
  }

  /** How many partitions (worker threads, Python servers) the stage runs. */
  get partitions(): number {
    return this.#engine.partitions;
  }

  /** Run messages (plain objects) through the stage; yields outputs and errors as they complete. */
  process(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<StageRecord> {
    return this.#engine.process(source);
  }

  /** An object-mode Duplex for stream.pipeline(): write messages, read StageRecords. */
  stream(): Duplex {
    return this.#engine.stream();
  }

  /** Load a new model on every partition; rejects with the first partition's typed error (all are in `errors`). */
  addModel(spec: ModelSpec): Promise<void> {
    return this.#engine.addModel(spec);
  }

  /** Reload a model from disk on every partition; a partition whose reload fails keeps the old model. */
  updateModel(spec: ModelSpec): Promise<void> {
    return this.#engine.updateModel(spec);
  }

  /** Unload a model on every partition (and drop its state). */
  removeModel(name: string): Promise<void> {
    return this.#engine.removeModel(name);
  }

  /** Call a model's `init(dataFile)` on every partition. */
  initModel(name: string, dataFile: string): Promise<void> {
    return this.#engine.initModel(name, dataFile);
  }

  /** Every partition's server status. */
  status(): Promise<PartitionStatus[]> {
    return this.#engine.status();
  }

  /** Counters since the stage started. */
  stats(): StageStats {
    return this.#engine.stats();
  }

  /** Every partition's queued and in-flight messages right now. */
  load(): PartitionLoad[] {
    return this.#engine.load();
  }

  /** A read-only snapshot of a partition's state: model name to { key: value }, as of its last emitted output. */
  state(partition: number): Record<string, Record<string, unknown>> {
    return this.#engine.state(partition);
  }

  /**
   * With `stateDir`: commit the state as of every record already yielded (whole batches: a batch counts once
   * its last record was taken) and resolve once it is on disk, so an embedding program can checkpoint in step
   * with its own sink. Rejects with InvalidOptionError without stateDir.
   */
  checkpoint(): Promise<void> {
    return this.#engine.checkpoint();
  }

  /** Stop taking input, finish and emit every message in flight, stop every server, destroy the pools. */
  close(): Promise<void> {
    return this.#engine.close();
  }
}
