/**
 * Typed errors of pystage. Every error has a stable `code`; errors cross the
 * worker-thread boundary as plain `{code, message, ...}` records (Piscina loses
 * classes) and are rebuilt here with `errorFromRecord`.
 */
import type { FrameErrorKind } from '../protocol/frame-errors.js';

/** The plain form of an error, safe for structured clone and JSON. */
export interface ErrorRecord {
  code: string;
  message: string;
  /** The Python exception type or frame error type, when there is one. */
  type?: string;
  traceback?: string | null;
  partition?: number;
  model?: string;
}

/** Base class of every pystage error. */
export class PystageError extends Error {
  readonly code: string = 'PYSTAGE_ERROR';
  type?: string;
  traceback?: string | null;
  partition?: number;
  model?: string;

  constructor(message: string, details: Omit<ErrorRecord, 'code' | 'message'> = {}) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, details);
  }

  /** The plain record of this error, for crossing threads or writing JSON. */
  toRecord(): ErrorRecord {
    const record: ErrorRecord = { code: this.code, message: this.message };
    if (this.type !== undefined) record.type = this.type;
    if (this.traceback !== undefined) record.traceback = this.traceback;
    if (this.partition !== undefined) record.partition = this.partition;
    if (this.model !== undefined) record.model = this.model;
    return record;
  }
}

/** Options given to createStage or the CLI are invalid. */
export class InvalidOptionError extends PystageError {
  override readonly code = 'PYSTAGE_INVALID_OPTION';
}

/** The Python interpreter or the server script could not be started. */
export class PythonStartError extends PystageError {
  override readonly code = 'PYSTAGE_PYTHON_START';
}

/** A model could not be added, updated, initialised or removed (bad file, bad class, constructor raised). */
export class ModelLoadError extends PystageError {
  override readonly code = 'PYSTAGE_MODEL_LOAD';
}

/** The model's `execute` raised for one message. */
export class ModelExecutionError extends PystageError {
  override readonly code = 'PYSTAGE_MODEL_EXECUTION';
}

/**
 * The Python server refused a request that is neither a model's load nor its execution (an unknown command,
 * a bad option). A model returning something that is neither a dict nor None is a ModelExecutionError
 * (type `BadModelOutput`).
 */
export class BadRequestError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_REQUEST';
}

/** A message killed or hung its Python server on every try and was given up. */
export class PoisonMessageError extends PystageError {
  override readonly code = 'PYSTAGE_POISON_MESSAGE';
}

/**
 * The server answered, but its reply to these messages could not be used (an output file could not be
 * read, the reply could not be mapped): they failed and changed no state; the requests after them ran
 * again on a server restored to the state without them.
 */
export class UnusableReplyError extends PystageError {
  override readonly code = 'PYSTAGE_UNUSABLE_REPLY';
}

/** A message was not a JSON object (CLI input line or API value). */
export class BadInputError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_INPUT';
}

/** A message named a model (via the route field) that the stage does not have. */
export class RoutingError extends PystageError {
  override readonly code = 'PYSTAGE_ROUTING';
}

/** A partition's Python server could not be restarted; the partition cannot go on. */
export class PartitionFailedError extends PystageError {
  override readonly code = 'PYSTAGE_PARTITION_FAILED';
}

/** The stage is closed or closing and takes no more work. */
export class StageClosedError extends PystageError {
  override readonly code = 'PYSTAGE_STAGE_CLOSED';
}

/** Several partitions answered a metadata command with errors; `errors` holds each. */
export class PartitionsError extends PystageError {
  override readonly code = 'PYSTAGE_PARTITIONS';

  constructor(message: string, readonly errors: PystageError[] = []) {
    super(message);
  }
}

/** A frame received from the other side was damaged (reply code -3 when the server sees one). */
export class FrameError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_FRAME';

  constructor(readonly kind: FrameErrorKind, message = `bad frame: ${kind}`) {
    super(message, { type: kind });
  }
}

/** A payload is too large to send in one frame (over maxFrameBytes, or over the uint32 LENGTH field). */
export class FrameTooLargeError extends PystageError {
  override readonly code = 'PYSTAGE_FRAME_TOO_LARGE';

  constructor(readonly payloadBytes: number, readonly maxFrameBytes: number) {
    super(`payload of ${payloadBytes} bytes exceeds the frame limit of ${maxFrameBytes} bytes`);
  }
}

/** What exactly was wrong with a payload. */
export type BadJsonReason = 'not-utf8' | 'not-json' | 'not-object';

/** A frame's payload is not a UTF-8 JSON object. */
export class BadJsonError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_JSON';
  /** The protocol's name for this error, beside the frame error kinds. */
  readonly kind = 'bad-json';

  constructor(readonly reason: BadJsonReason, message: string) {
    super(message, { type: 'bad-json' });
  }
}

/** Why a connection stopped being usable. `timeout` means the server is stuck, not just the socket. */
export type BrokenReason = 'closed' | 'socket-error' | 'bad-frame' | 'out-of-order' | 'timeout' | 'rewind';

/** Rejection of every request pending on a connection that broke. */
export class ConnectionBrokenError extends PystageError {
  override readonly code = 'PYSTAGE_CONNECTION_BROKEN';
  constructor(readonly reason: BrokenReason, detail: string, readonly progress: number) {
    super(`connection to the Python server broke (${reason}): ${detail}`);
  }
}

/** A value is larger than the whole cache may hold. */
export class CacheValueTooLargeError extends PystageError {
  override readonly code = 'PYSTAGE_CACHE_VALUE_TOO_LARGE';
}

/** A host request the host cannot answer; `type` becomes the model's `HostRequestError.type`. */
export class HandlerFailure extends PystageError {
  override readonly code = 'PYSTAGE_HOST_REQUEST';
  constructor(override readonly type: string, message: string) {
    super(message);
  }
}

/** A message over the inline limit could not be written to the spool directory (a full disk): free space there, or point TMPDIR elsewhere. */
export class SpoolWriteError extends PystageError {
  override readonly code = 'PYSTAGE_SPOOL_WRITE';
}

/** A command line that cannot be run (the CLI's own: exit code 2). */
export class UsageError extends PystageError {
  override readonly code = 'PYSTAGE_USAGE';
}

/** A --state-dir / stateDir that cannot be used: not a pystage store, damaged, or not writable. Fix or empty DIR. */
export class StateStoreError extends PystageError {
  override readonly code = 'PYSTAGE_STATE_STORE';
}

/**
 * The state dir holds the resume point of a cut-short run that is not this job (other input, partition
 * count or models): run the same command, or pass --reset-state / --new-input / --repartition-state.
 */
export class ResumeRefusedError extends PystageError {
  override readonly code = 'PYSTAGE_RESUME_REFUSED';
}

/**
 * Shard mode: this member no longer holds the lease of a shard (it expired while the member was
 * paused or cut off, and another member may own the shard now), so Redis refused its commit. The
 * member drops that shard's work in hand without emitting it and takes shards again as a new owner.
 */
export class LeaseLostError extends PystageError {
  override readonly code = 'PYSTAGE_LEASE_LOST';
  /** The shards whose leases were lost. */
  shards: number[] = [];
}

/** Redis refused a command the stage cannot do without (wrong key type, no permission, …), or the client was closed. */
export class RedisStreamError extends PystageError {
  override readonly code = 'PYSTAGE_REDIS';
}

/** Every error class by its code: what `errorFromRecord` rebuilds. */
const classes: Record<string, abstract new (...args: never[]) => PystageError> = {
  PYSTAGE_ERROR: PystageError,
  PYSTAGE_INVALID_OPTION: InvalidOptionError,
  PYSTAGE_PYTHON_START: PythonStartError,
  PYSTAGE_MODEL_LOAD: ModelLoadError,
  PYSTAGE_MODEL_EXECUTION: ModelExecutionError,
  PYSTAGE_BAD_REQUEST: BadRequestError,
  PYSTAGE_POISON_MESSAGE: PoisonMessageError,
  PYSTAGE_UNUSABLE_REPLY: UnusableReplyError,
  PYSTAGE_BAD_INPUT: BadInputError,
  PYSTAGE_ROUTING: RoutingError,
  PYSTAGE_PARTITION_FAILED: PartitionFailedError,
  PYSTAGE_STAGE_CLOSED: StageClosedError,
  PYSTAGE_PARTITIONS: PartitionsError,
  PYSTAGE_BAD_FRAME: FrameError,
  PYSTAGE_FRAME_TOO_LARGE: FrameTooLargeError,
  PYSTAGE_BAD_JSON: BadJsonError,
  PYSTAGE_CONNECTION_BROKEN: ConnectionBrokenError,
  PYSTAGE_CACHE_VALUE_TOO_LARGE: CacheValueTooLargeError,
  PYSTAGE_HOST_REQUEST: HandlerFailure,
  PYSTAGE_USAGE: UsageError,
  PYSTAGE_REDIS: RedisStreamError,
  PYSTAGE_STATE_STORE: StateStoreError,
  PYSTAGE_RESUME_REFUSED: ResumeRefusedError,
  PYSTAGE_LEASE_LOST: LeaseLostError,
  PYSTAGE_SPOOL_WRITE: SpoolWriteError,
};

/** The error codes pystage can produce, each with the class `errorFromRecord` makes of it. */
export const ERROR_CODES: readonly string[] = Object.keys(classes);

/**
 * Rebuild a typed error from its plain record (the inverse of `toRecord`): an instance of the code's
 * class with the record's message and details. The class's own constructor is not run (its
 * arguments, such as a frame error's kind, are not in the record), so only record fields are set.
 */
export function errorFromRecord(record: ErrorRecord): PystageError {
  const Class = classes[record.code] ?? PystageError;
  const { code, message, ...details } = record;
  const error = Reflect.construct(PystageError, [message, details], Class) as PystageError;
  // Class fields (`code`) are set by the class's constructor, which did not run: set it from the record.
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: false, configurable: true });
  return error;
}

/** The plain record of any thrown value. */
export function toErrorRecord(err: unknown): ErrorRecord {
  if (err instanceof PystageError) return err.toRecord();
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'PYSTAGE_ERROR',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}
