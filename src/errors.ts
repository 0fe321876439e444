/**
 * Typed errors of pystage. Every error has a stable `code`; errors cross the
 * worker-thread boundary as plain `{code, message, ...}` records (Piscina loses
 * classes) and are rebuilt here with `errorFromRecord`.
 */

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

/** The model returned something that is neither a dict nor None, or the server rejected the request. */
export class BadRequestError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_REQUEST';
}

/** A message killed or hung its Python server on every try and was given up. */
export class PoisonMessageError extends PystageError {
  override readonly code = 'PYSTAGE_POISON_MESSAGE';
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
  errors: PystageError[] = [];
}

const classes = {
  PYSTAGE_INVALID_OPTION: InvalidOptionError,
  PYSTAGE_PYTHON_START: PythonStartError,
  PYSTAGE_MODEL_LOAD: ModelLoadError,
  PYSTAGE_MODEL_EXECUTION: ModelExecutionError,
  PYSTAGE_BAD_REQUEST: BadRequestError,
  PYSTAGE_POISON_MESSAGE: PoisonMessageError,
  PYSTAGE_BAD_INPUT: BadInputError,
  PYSTAGE_ROUTING: RoutingError,
  PYSTAGE_PARTITION_FAILED: PartitionFailedError,
  PYSTAGE_STAGE_CLOSED: StageClosedError,
} as const;

/** Rebuild a typed error from its plain record (the inverse of `toRecord`). */
export function errorFromRecord(record: ErrorRecord): PystageError {
  const Class = (classes as Record<string, typeof PystageError>)[record.code] ?? PystageError;
  const { code: _code, message, ...details } = record;
  return new Class(message, details);
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
