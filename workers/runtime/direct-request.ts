/**
 * Requests that bypass the operation queue (the handshake, the restore of state, the model loads and
 * the replay onto a new server, all before the queue may send), and the parsing of command replies.
 */
import { encodeFrame, type CommandName, type ReplyError } from '../../src/protocol/index.js';
import { readReplyHead } from '../../src/protocol/replies.js';
import { commandRequest } from '../../src/protocol/requests.js';
import type { PystageError } from '../../src/api/errors.js';
import type { ModelSpec } from '../../src/engine/worker-protocol.js';
import type { ServerConnection } from '../server/server-connection.js';
import { replyError } from './reply-map.js';

export interface ParsedReply {
  Code: number;
  Result?: unknown;
  Error?: ReplyError;
}

/** A command's reply, parsed (commands answer small JSON; model outputs never come this way). */
export function parseReply(payload: Buffer): ParsedReply {
  readReplyHead(payload);
  return JSON.parse(payload.toString('utf8')) as ParsedReply;
}

/** The request a command writes for a given id. */
export function commandPayload(cmd: CommandName, cmdOptions: object, modelOptions?: object): (id: number) => string {
  return (id) => commandRequest(cmd, id, cmdOptions, modelOptions);
}

/**
 * The one verb for sending outside the queue: frame the request `payload(id)` writes for a fresh id,
 * send it, and resolve with its parsed reply.
 */
export async function sendDirect(connection: ServerConnection, maxFrameBytes: number, payload: (id: number) => string, timeoutMs?: number): Promise<ParsedReply> {
  const id = connection.takeId();
  return parseReply(await connection.send(id, encodeFrame(payload(id), maxFrameBytes, connection.checksum), timeoutMs));
}

/** The typed error of a command the server refused (Code < 0), naming its model and file. */
export function commandError(partition: number, cmd: CommandName, cmdOptions: Record<string, unknown>, reply: ParsedReply): PystageError {
  // The file the failure is about: the model's, or for initModel the data file (a JSON error's line is in it).
  const file = (cmdOptions.ModelFile ?? cmdOptions.DataFile) as string | undefined;
  return replyError(reply.Code, reply.Error, partition, cmdOptions.ModelName as string | undefined, cmd, file);
}

/** addModel/updateModel CmdOptions of a spec. Batch is always sent: the spec, not the server, decides. */
export function loadOptions(spec: ModelSpec): Record<string, unknown> {
  return {
    ModelName: spec.name, ModelFile: spec.file, ...(spec.className ? { ClassName: spec.className } : {}), Batch: spec.batch !== false,
    ...(spec.stateTtlMs !== undefined ? { StateTtlMs: spec.stateTtlMs } : {}),
  };
}

/** Commands that load a model or run its init: they get the load timeout, not the execute timeout. */
export function isLoading(cmd: CommandName): boolean {
  return cmd === 'addModel' || cmd === 'updateModel' || cmd === 'initModel';
}
