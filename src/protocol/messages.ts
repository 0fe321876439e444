/**
 * Typed requests and replies of protocol v1. Payloads are JSON objects; field names are
 * PascalCase on the wire because the Python server and the original protocol use them.
 */

/** Version of the protocol this code speaks; `hello` reports the server's. */
export const PROTOCOL_VERSION = 1;

/** Version of the command format, sent as `CmdVer` in every request. */
export const COMMAND_VERSION = 1;

/** A JSON object as carried in messages and options. */
export type JsonObject = Record<string, unknown>;

/** Every command the server understands. */
export const COMMAND_NAMES = [
  'hello',
  'addModel',
  'updateModel',
  'removeModel',
  'initModel',
  'executeModel',
  'executeBatch',
  'serverStatus',
  'stopServer',
  'restoreState',
] as const;

/** The name of a command (`Cmd`). */
export type CommandName = (typeof COMMAND_NAMES)[number];

/** Reply codes: >= 0 success, < 0 failure (then `Error` is set). */
export const ReplyCode = {
  OK: 0,
  NO_OUTPUT: 1,
  /** Not a reply: a progress frame for a request still running (only after hello asked for them). */
  PROGRESS: 2,
  /** Not a reply: a model's request to the host while the request with this Id runs (only after hello asked for them). */
  HOST_REQUEST: 3,
  BAD_REQUEST: -1,
  MODEL_ERROR: -2,
  BAD_FRAME: -3,
  NOT_AUTHENTICATED: -4,
  /** In a hostReply (client to server): the host could not answer (handler threw, unknown handler, cache full). */
  HOST_FAILED: -5,
} as const;

/** One of the ReplyCode values. */
export type ReplyCodeValue = (typeof ReplyCode)[keyof typeof ReplyCode];

/** `hello` options: the shared token when the server requires one. */
export interface HelloOptions {
  Token?: string;
  /** Ask for a progress frame at least this often (ms) while a batch runs. */
  Progress?: number;
  /** Ask for CRC32 frames (VERSION 2) both ways; the reply echoes it when agreed. */
  Checksum?: 'md5' | 'crc32';
  /** Take each request's state changes with its reply (`State`), within this many bytes of state. */
  State?: { MaxBytes?: number };
  /** Answer the models' host requests (hostRequest frames); a request without its own timeout gets TimeoutMs. */
  Host?: { TimeoutMs?: number };
  /** The partition this server runs (models in the original server's style get it as PartitionHash). */
  Partition?: number;
}

/** `restoreState` options: every model's state, as [key, value] pairs. */
export interface RestoreStateOptions {
  States: Record<string, [string, unknown][]>;
}

/** `addModel` / `updateModel` options; ModelFile is relative to the server's python path. */
export interface AddModelOptions {
  ModelName: string;
  ModelFile: string;
  ClassName?: string;
  /** false: a model with execute_batch runs one message at a time (default true). */
  Batch?: boolean;
}

/** `removeModel` options. */
export interface RemoveModelOptions {
  ModelName: string;
}

/** `initModel` options; DataFile must lie in the spool dir or the python path. */
export interface InitModelOptions {
  ModelName: string;
  DataFile: string;
}

/** `executeModel` options: the message inline, or in a JSON file for big data. */
export type ExecuteModelOptions =
  | { ModelName: string; InputDictionary: JsonObject }
  | { ModelName: string; InputFile: string };

/** `executeBatch` options: one model, many messages. */
export interface ExecuteBatchOptions {
  ModelName: string;
  Inputs: JsonObject[];
}

/** CmdOptions of each command. */
export interface CommandOptions {
  hello: HelloOptions;
  addModel: AddModelOptions;
  updateModel: AddModelOptions;
  removeModel: RemoveModelOptions;
  initModel: InitModelOptions;
  executeModel: ExecuteModelOptions;
  executeBatch: ExecuteBatchOptions;
  serverStatus: Record<string, never>;
  stopServer: Record<string, never>;
  restoreState: RestoreStateOptions;
}

/** The `Error` of a failed reply (Code < 0) or batch item. */
export interface ReplyError {
  /** The Python exception type, or the protocol error type (e.g. "bad-checksum"). */
  Type: string;
  Message: string;
  Traceback: string | null;
}

/** `hello` result. */
export interface HelloResult {
  Uniq: string;
  Pid: number;
  ProtocolVersion: number;
  Commands: string[];
}

/** One model in `serverStatus`. */
export interface ModelStatus {
  Name: string;
  File: string;
  Class: string;
  Executed: number;
  Errors: number;
}

/** `serverStatus` result. */
export interface ServerStatusResult {
  Uniq: string;
  Pid: number;
  UptimeSeconds: number;
  ProtocolVersion: number;
  Python: string;
  Models: ModelStatus[];
}

/** The outcome of one input of `executeBatch`, in input order. */
export interface BatchItemReply {
  Code: number;
  Result?: JsonObject | null;
  /** Set instead of Result when the result exceeded the inline limit; the client deletes the file. */
  OutputFile?: string;
  Error?: ReplyError;
}

/** Result of each command on success; commands the issue leaves open are typed as unknown. */
export interface CommandResults {
  hello: HelloResult;
  addModel: unknown;
  updateModel: unknown;
  removeModel: unknown;
  initModel: unknown;
  executeModel: JsonObject | null;
  executeBatch: BatchItemReply[];
  serverStatus: ServerStatusResult;
  stopServer: unknown;
  restoreState: { Keys: number };
}

/** A request frame's payload. */
export interface Request<C extends CommandName = CommandName> {
  Cmd: C;
  CmdVer: typeof COMMAND_VERSION;
  Id: number;
  CmdOptions: CommandOptions[C];
  /** Options for the model's constructor (addModel, updateModel). */
  ModelOptions?: JsonObject;
}

/** A reply frame's payload. `Cmd` and `Id` are null when the request could not be read. */
export interface Reply<C extends CommandName = CommandName> {
  Cmd: C | null;
  Id: number | null;
  /** A ReplyCode value; typed as number so an unknown code is seen, not hidden by the type. */
  Code: number;
  Result: CommandResults[C] | null;
  /** executeModel: set (with Result null) when the result exceeded the inline limit. */
  OutputFile?: string;
  /** Set when Code < 0. */
  Error?: ReplyError;
}

/** Build a request payload for `cmd`. */
export function makeRequest<C extends CommandName>(
  cmd: C,
  id: number,
  options: CommandOptions[C],
  modelOptions?: JsonObject,
): Request<C> {
  const request: Request<C> = { Cmd: cmd, CmdVer: COMMAND_VERSION, Id: id, CmdOptions: options };
  if (modelOptions !== undefined) request.ModelOptions = modelOptions;
  return request;
}

/** Whether a parsed payload has the shape of a Reply (Cmd, Id, Code and, when failed, Error). */
export function isReply(value: JsonObject): value is JsonObject & Reply {
  const { Cmd, Id, Code, Error: error } = value;
  if (!(Cmd === null || typeof Cmd === 'string')) return false;
  if (!(Id === null || Number.isInteger(Id))) return false;
  if (!Number.isInteger(Code)) return false;
  if ((Code as number) < 0) {
    if (typeof error !== 'object' || error === null) return false;
    const e = error as Record<string, unknown>;
    if (typeof e.Type !== 'string' || typeof e.Message !== 'string') return false;
    if (!(e.Traceback === null || e.Traceback === undefined || typeof e.Traceback === 'string')) return false;
  }
  return true;
}
