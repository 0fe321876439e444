/**
 * The stage's options: validated once, with every default in one place.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { InvalidOptionError } from './errors.js';
import { didYouMean } from './nearest-name.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame-constants.js';
import type { HostHandler } from '../context/host-services.js';
import type { ModelSpec } from '../engine/worker-protocol.js';
import type { RestoreProgress } from '../state/state-restore.js';

/** What createStage accepts. Only `models` is required. */
export interface StageOptions {
  /** The models every message runs through, in order (or only the routed one). */
  models: ModelSpec[];
  /** Number of partitions = worker threads = Python servers. Default: the number of CPU cores. */
  partitions?: number;
  /**
   * Directories put first on the servers' sys.path, in order. Default: the directories of the model files.
   * Model and data files must lie in one of these, or in the folder of a model or init file given here.
   */
  pythonPath?: string | string[];
  /** The Python interpreter. Default: `python3`. */
  python?: string;
  /** The message field whose value picks the partition. Default: `key`. */
  keyField?: string;
  /** When set, a message goes only to the model its field names. */
  routeField?: string;
  /** Emit every output in global input order (default: in order within each partition only). */
  ordered?: boolean;
  /** Messages queued or in flight per partition before input waits. Default 4096. */
  maxInFlight?: number;
  /** Messages per executeBatch request at most. Default 1024. */
  maxBatch?: number;
  /** Bytes of messages per executeBatch request at most (a bigger single message goes alone). Default 1 MiB. */
  maxBatchBytes?: number;
  /** About how long one batch should take in Python: batches of slow models hold fewer messages. Default 100 ms. */
  batchTargetMs?: number;
  /** Bytes of messages queued or in flight per partition before input waits. Default 16 MiB. */
  maxInFlightBytes?: number;
  /**
   * About how long, at a model's measured speed, the messages queued or in flight per partition may take
   * before input waits; bounds how long a stop (Ctrl-C, close) takes to drain with a slow model. Default 1000 ms.
   */
  maxInFlightMs?: number;
  /** Tasks in flight per partition (pipelining depth). Default 4. */
  pipelineDepth?: number;
  /**
   * Bytes one message may take (a CLI line, or an API message as JSON); a longer one becomes one error
   * record holding its first 1 KiB and its length, and the stream goes on. Default 64 MiB.
   */
  maxMessageBytes?: number;
  /** Bytes one model output may take as JSON; a bigger one fails its own message, naming the model and this limit. Default 64 MiB. */
  maxOutputBytes?: number;
  /** Messages and outputs bigger than this many bytes travel through spool files. Default 1 MiB. */
  inlineLimit?: number;
  /** Largest frame either side accepts. Default 64 MiB. */
  maxFrameBytes?: number;
  /** How long one message may run (the server reports progress within a batch) before its server counts as stuck and is replaced. Default 30 s. */
  executeTimeoutMs?: number;
  /**
   * How long loading a model (its constructor, on addModel/updateModel and at start) or its `init(dataFile)`
   * may take, separately from executeTimeoutMs: loading weights can take minutes. Default 300 s.
   */
  loadTimeoutMs?: number;
  /** How long a server may take to print its ready line. Default 10 s. */
  startTimeoutMs?: number;
  /** Server crashes one message may cause before it is given up as poison. Default 3. */
  maxAttempts?: number;
  /** pino level for the stage's and the servers' logs (on stderr). Default `warn`, as the CLI's. */
  logLevel?: string;
  /** Write NaN and infinities in model outputs as null; by default they fail the message (BadModelOutput). */
  nanAsNull?: boolean;
  /**
   * Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the stage runs (0 picks a free port;
   * see `Stage.metricsUrl`). Default: no server.
   */
  metricsPort?: number;
  /**
   * The address the metrics server binds. Default `127.0.0.1`: the metrics name your models and count
   * their traffic, unauthenticated, so reaching them from other machines (`0.0.0.0`, a LAN address) is
   * a choice to make, not a default.
   */
  metricsHost?: string;
  /** Handlers a model reaches with `self.context.request(name, payload)`: name to `(payload, context) => value`. Default none. */
  handlers?: Record<string, HostHandler>;
  /** How long a model's host request waits for its answer, unless it passes its own timeout. Default 30 s. */
  hostRequestTimeoutMs?: number;
  /** Bytes one partition's state (`self.context.state`, all models) may take; a write beyond fails its message. Default 16 MiB. */
  maxStateBytes?: number;
  /** Entries the shared cache (`self.context.cache`, `stage.cache`) holds before evicting the least recently used. Default 100,000. */
  cacheMaxEntries?: number;
  /** Bytes (keys and JSON values) the shared cache holds before evicting the least recently used. Default 64 MiB. */
  cacheMaxBytes?: number;
  /**
   * Keep the partitions' state in this directory (an embedded LMDB store): a new stage on it starts with
   * the state of its last checkpoint. Default: none (state lives in memory only).
   */
  stateDir?: string;
  /** With stateDir: checkpoint at least this often (and at close, and on `stage.checkpoint()`). Default 1000 ms. */
  checkpointIntervalMs?: number;
  /** With stateDir: a store of another partition count is redistributed by key hash instead of refused. Default false. */
  repartitionState?: boolean;
  /** With stateDir: called while a large state restores (about every second) and once when done. */
  onRestoreProgress?: (progress: RestoreProgress) => void;
}

/** Options after validation, every default filled in. */
export type ResolvedOptions = Required<Omit<StageOptions, 'routeField' | 'metricsPort' | 'pythonPath' | 'stateDir' | 'onRestoreProgress'>> & {
  stateDir: string | null;
  onRestoreProgress: ((progress: RestoreProgress) => void) | null;
  routeField: string | null;
  metricsPort: number | null;
  /** Absolute, at least one. */
  pythonPath: string[];
  /** Further folders the servers accept model and data files from: those of the models and init files given. */
  allowRoots: string[];
};

const defaults = {
  python: 'python3',
  keyField: 'key',
  ordered: false,
  maxInFlight: 4096,
  maxBatch: 1024,
  maxBatchBytes: 1024 * 1024,
  batchTargetMs: 100,
  maxInFlightBytes: 16 * 1024 * 1024,
  maxInFlightMs: 1000,
  pipelineDepth: 4,
  maxMessageBytes: 64 * 1024 * 1024,
  maxOutputBytes: 64 * 1024 * 1024,
  inlineLimit: 1024 * 1024,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  executeTimeoutMs: 30_000,
  loadTimeoutMs: 300_000,
  startTimeoutMs: 10_000,
  maxAttempts: 3,
  logLevel: 'warn',
  nanAsNull: false,
  handlers: {},
  hostRequestTimeoutMs: 30_000,
  maxStateBytes: 16 * 1024 * 1024,
  cacheMaxEntries: 100_000,
  cacheMaxBytes: 64 * 1024 * 1024,
  checkpointIntervalMs: 1000,
  repartitionState: false,
  metricsHost: '127.0.0.1',
} as const;

/** The options without an entry in `defaults`: required, computed, or meaning something when absent. */
const undefaulted = ['models', 'partitions', 'pythonPath', 'routeField', 'metricsPort', 'stateDir', 'onRestoreProgress'] as const;
// Compile-time check: every StageOptions key has a default or is listed above, so none is refused as unknown.
const everyOptionKnown: Exclude<keyof StageOptions, keyof typeof defaults | (typeof undefaulted)[number]> extends never ? true : never = true;
void everyOptionKnown;

/** Every key createStage accepts. */
const optionKeys: ReadonlySet<string> = new Set([...Object.keys(defaults), ...undefaulted]);

/** Every key of a model spec (ModelSpec). */
const modelKeys: ReadonlySet<string> = new Set(['name', 'file', 'className', 'options', 'initData', 'batch', 'stateTtlMs']);

/** A key the object has that `known` lacks: refused, with the nearest known key (a typo must not pass silently). */
function refuseUnknownKeys(what: string, given: object, known: ReadonlySet<string>): void {
  for (const key of Object.keys(given)) {
    if (!known.has(key)) throw new InvalidOptionError(`${what} has no option "${key}"${didYouMean(key, known)}`);
  }
}

const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Validate options and fill in defaults; throws InvalidOptionError naming the bad option and value. */
export function resolveOptions(options: StageOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('createStage needs an options object with at least `models`');
  refuseUnknownKeys('createStage', options, optionKeys);
  const models = options.models;
  if (!Array.isArray(models) || models.length === 0) {
    throw new InvalidOptionError('`models` must be a non-empty array of { name, file, className?, options?, initData? }');
  }
  const names = new Set<string>();
  for (const m of models) {
    checkModelSpec(m);
    if (names.has(m.name)) throw new InvalidOptionError(`model name "${m.name}" is given twice; model names must be unique`);
    names.add(m.name);
  }
  const given = options.pythonPath === undefined ? [] : Array.isArray(options.pythonPath) ? options.pythonPath : [options.pythonPath];
  if (given.some((p) => typeof p !== 'string' || p === '')) throw new InvalidOptionError(`pythonPath must be a directory or a list of them; got ${JSON.stringify(options.pythonPath)}`);
  // Relative paths: against the current directory, like every Unix tool (a model file is also looked for in the python path).
  const explicit = unique(given.map((p) => resolve(p)));
  const files = models.map((m) => ({ ...m, file: modelFile(m.file, explicit), initData: m.initData === undefined ? undefined : modelFile(m.initData, explicit) }));
  const folders = unique(files.flatMap((m) => [dirname(m.file), ...(m.initData === undefined ? [] : [dirname(m.initData)])]));
  const pythonPath = explicit.length > 0 ? explicit : unique(files.map((m) => dirname(m.file)));
  const isDir = (dir: string) => existsSync(dir) && statSync(dir).isDirectory();
  for (const dir of pythonPath) {
    if (!isDir(dir)) throw new InvalidOptionError(`python path "${dir}" is not a directory: pass directories that exist`);
  }
  for (const m of files) {
    for (const file of [m.file, m.initData]) {
      if (file !== undefined && !isDir(dirname(file))) {
        throw new InvalidOptionError(`model "${m.name}": "${file}" is in a directory that does not exist (relative paths are relative to the current directory)`);
      }
    }
  }
  const resolved: ResolvedOptions = {
    ...defaults,
    ...withoutUndefined(options),
    models: files.map((m) => withoutUndefined(m) as ModelSpec),
    partitions: options.partitions ?? availableParallelism(),
    pythonPath,
    allowRoots: folders.filter((f) => !pythonPath.includes(f)),
    routeField: options.routeField ?? null,
    metricsPort: options.metricsPort ?? null,
    stateDir: options.stateDir === undefined ? null : resolve(options.stateDir),
    onRestoreProgress: options.onRestoreProgress ?? null,
  };
  if (options.stateDir !== undefined && (typeof options.stateDir !== 'string' || options.stateDir === '')) {
    throw new InvalidOptionError(`stateDir must be a directory path; got ${JSON.stringify(options.stateDir)}`);
  }
  positiveInt('checkpointIntervalMs', resolved.checkpointIntervalMs, 86_400_000);
  if (typeof resolved.repartitionState !== 'boolean') throw new InvalidOptionError(`repartitionState must be true or false; got ${JSON.stringify(resolved.repartitionState)}`);
  if (resolved.onRestoreProgress !== null && typeof resolved.onRestoreProgress !== 'function') throw new InvalidOptionError('onRestoreProgress must be a function');
  if (resolved.metricsPort !== null && (!Number.isInteger(resolved.metricsPort) || resolved.metricsPort < 0 || resolved.metricsPort > 65535)) {
    throw new InvalidOptionError(`metricsPort must be a port number from 0 to 65535; got ${JSON.stringify(resolved.metricsPort)}`);
  }
  positiveInt('partitions', resolved.partitions, 256);
  positiveInt('maxInFlight', resolved.maxInFlight);
  positiveInt('maxBatch', resolved.maxBatch);
  positiveInt('pipelineDepth', resolved.pipelineDepth);
  positiveInt('maxBatchBytes', resolved.maxBatchBytes);
  positiveInt('batchTargetMs', resolved.batchTargetMs);
  positiveInt('maxInFlightBytes', resolved.maxInFlightBytes);
  positiveInt('maxInFlightMs', resolved.maxInFlightMs);
  positiveInt('inlineLimit', resolved.inlineLimit);
  positiveInt('maxMessageBytes', resolved.maxMessageBytes);
  positiveInt('maxOutputBytes', resolved.maxOutputBytes);
  positiveInt('maxFrameBytes', resolved.maxFrameBytes, 2 ** 32 - 1);
  positiveInt('executeTimeoutMs', resolved.executeTimeoutMs);
  positiveInt('loadTimeoutMs', resolved.loadTimeoutMs);
  positiveInt('startTimeoutMs', resolved.startTimeoutMs);
  positiveInt('maxAttempts', resolved.maxAttempts);
  // A batch, and a message below the inline limit, must fit in one frame with room for the request around it.
  const room = resolved.maxFrameBytes - 64 * 1024;
  if (resolved.maxBatchBytes > room || resolved.inlineLimit > room) {
    throw new InvalidOptionError(`maxBatchBytes (${resolved.maxBatchBytes}) and inlineLimit (${resolved.inlineLimit}) must be at least 64 KiB below maxFrameBytes (${resolved.maxFrameBytes})`);
  }
  if (!logLevels.includes(resolved.logLevel)) {
    throw new InvalidOptionError(`logLevel "${resolved.logLevel}" is not one of ${logLevels.join(', ')}`);
  }
  if (typeof resolved.metricsHost !== 'string' || resolved.metricsHost === '') throw new InvalidOptionError(`metricsHost must be an address to bind, such as 127.0.0.1 or 0.0.0.0; got ${JSON.stringify(resolved.metricsHost)}`);
  if (typeof resolved.keyField !== 'string' || resolved.keyField === '') throw new InvalidOptionError('keyField must be a non-empty string');
  if (typeof resolved.nanAsNull !== 'boolean') throw new InvalidOptionError(`nanAsNull must be true or false; got ${JSON.stringify(resolved.nanAsNull)}`);
  positiveInt('hostRequestTimeoutMs', resolved.hostRequestTimeoutMs);
  positiveInt('cacheMaxEntries', resolved.cacheMaxEntries);
  positiveInt('cacheMaxBytes', resolved.cacheMaxBytes);
  positiveInt('maxStateBytes', resolved.maxStateBytes);
  // A reply carries the state changes of its request besides up to half a frame of outputs.
  if (resolved.maxStateBytes > Math.floor(resolved.maxFrameBytes / 2)) {
    throw new InvalidOptionError(`maxStateBytes (${resolved.maxStateBytes}) must be at most half of maxFrameBytes (${resolved.maxFrameBytes}): a reply carries its request's state changes beside up to half a frame of outputs`);
  }
  checkHandlers(resolved.handlers);
  return resolved;
}

/** Handlers must be an object of functions. */
function checkHandlers(handlers: unknown): void {
  if (handlers === null || typeof handlers !== 'object' || Array.isArray(handlers)) {
    throw new InvalidOptionError('handlers must be an object of functions: { name: (payload, context) => value }');
  }
  for (const [name, fn] of Object.entries(handlers)) {
    if (typeof fn !== 'function') throw new InvalidOptionError(`handler "${name}" must be a function (payload, context) => value; got ${typeof fn}`);
  }
}

/** Check one model spec's shape; used at construction and by addModel/updateModel. */
export function checkModelSpec(m: ModelSpec): void {
  if (m === null || typeof m !== 'object' || typeof m.name !== 'string' || m.name === '' || typeof m.file !== 'string' || m.file === '') {
    throw new InvalidOptionError(`a model needs a non-empty string "name" and "file"; got ${JSON.stringify(m)}`);
  }
  refuseUnknownKeys(`model "${m.name}"`, m, modelKeys);
  if (m.options !== undefined && (m.options === null || typeof m.options !== 'object' || Array.isArray(m.options))) {
    throw new InvalidOptionError(`options of model "${m.name}" must be a JSON object; got ${JSON.stringify(m.options)}`);
  }
  if (m.batch !== undefined && typeof m.batch !== 'boolean') {
    throw new InvalidOptionError(`batch of model "${m.name}" must be true or false; got ${JSON.stringify(m.batch)}`);
  }
  if (m.stateTtlMs !== undefined && !(Number.isSafeInteger(m.stateTtlMs) && m.stateTtlMs >= 1)) {
    throw new InvalidOptionError(`stateTtlMs of model "${m.name}" must be a positive integer of milliseconds; got ${JSON.stringify(m.stateTtlMs)}`);
  }
}

/**
 * A model or data file as the server gets it, absolute: a relative path is relative to the current directory;
 * the API also finds one relative to a python path entry (the CLI makes every path absolute first).
 */
export function modelFile(file: string, pythonPath: string[]): string {
  if (isAbsolute(file)) return file;
  const inCwd = resolve(file);
  if (existsSync(inCwd)) return inCwd;
  const inPythonPath = pythonPath.map((dir) => resolve(dir, file)).find((path) => existsSync(path));
  // Found nowhere: the current directory's reading, so an error names the file the user meant.
  return inPythonPath ?? inCwd;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

function positiveInt(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidOptionError(`${name} must be an integer from 1 to ${max}; got ${JSON.stringify(value)}`);
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Defaults of the Redis Streams source and sink (validated in src/redis/redis-options.ts). */
export const redisDefaults = {
  /** Entries idle longer than this in another consumer's pending list are claimed (XAUTOCLAIM). */
  claimIdleMs: 30_000,
  /** Entries per XREADGROUP / XAUTOCLAIM call. */
  readCount: 512,
  /** How long one blocking XREADGROUP waits for new entries before the reader looks at claims again. */
  blockMs: 2_000,
  /** Reconnect backoff: first delay and cap (doubling, with jitter). */
  reconnectMinMs: 50,
  reconnectMaxMs: 2_000,
  /** Take over the whole group at start and never claim during the run (one stage per stream). */
  exclusive: false,
  /** An entry read back or claimed after more deliveries than this becomes a poison error record instead of running again. */
  maxDeliveries: 10,
  /** Shard mode: a shard's lease lasts this long without renewal (renewed every fifth of it). */
  leaseMs: 10_000,
} as const;
