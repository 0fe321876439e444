/**
 * Every request a worker sends, built in one place. Commands are small JSON texts; an
 * executeBatch is framed straight from the messages' bytes, which are never re-encoded.
 */
import { frameVersion, writeChecksum, type Checksum } from './checksum.js';
import { CHECKSUM_OFFSET, FRAME_OVERHEAD, HEADER_BYTES, LENGTH_OFFSET, VERSION_OFFSET } from './frame-constants.js';
import { FrameTooLargeError } from '../api/errors.js';
import { COMMAND_VERSION, ReplyCode, type CommandName } from './messages.js';

const json = JSON.stringify;

/** The JSON text of a command request (everything but executeBatch). */
export function commandRequest(cmd: CommandName, id: number, cmdOptions: object, modelOptions?: object): string {
  const tail = modelOptions === undefined ? '' : `,"ModelOptions":${json(modelOptions)}`;
  return `{"Cmd":"${cmd}","CmdVer":${COMMAND_VERSION},"Id":${id},"CmdOptions":${json(cmdOptions)}${tail}}`;
}

/**
 * The JSON text of a hostReply: the answer to the server's hostRequest `seq`, either a result (JSON
 * text, spliced in as is) or an error. Not a request: the server reads it while the model waits.
 */
export function hostReplyPayload(seq: number, answer: { ok: true; json: string } | { ok: false; type: string; message: string }): string {
  const head = `{"Cmd":"hostReply","CmdVer":${COMMAND_VERSION},"Seq":${seq},`;
  if (answer.ok) return `${head}"Code":0,"Result":${answer.json}}`;
  return `${head}"Code":${ReplyCode.HOST_FAILED},"Error":${json({ Type: answer.type, Message: answer.message, Traceback: null })}}`;
}

/** The JSON text of restoreState for the states given as JSON text (`{"model":[["key",value],…],…}`). */
export function restoreStateRequest(id: number, statesJson: string, append = false): string {
  return `{"Cmd":"restoreState","CmdVer":${COMMAND_VERSION},"Id":${id},"CmdOptions":{"States":${statesJson}${append ? ',"Append":true' : ''}}}`;
}

/**
 * A whole state as restoreState requests (functions of the request id), each holding at most about
 * `maxBytes` of entries (`[key, value]` or `[key, value, expiresAt]`, values spliced in as they are):
 * the first replaces the server's state (also when there is nothing to restore), every later one adds
 * to it (`Append`). An entry never needs more than one frame: the state limit is below the frame limit.
 */
/** One restoreState frame of a state restored in several: its request and the entries it carries. */
export interface RestoreFrame {
  request: (id: number) => string;
  entries: StateEntry[];
}

/** One state entry as it crosses threads: model, key, JSON text, expiry (ms since the epoch; null: none). */
export type StateEntry = [string, string, string, number | null];

export function* restoreStatePayloads(entries: Iterable<StateEntry>, maxBytes: number): Generator<RestoreFrame> {
  let models = new Map<string, string[]>();
  let carried: StateEntry[] = [];
  let bytes = 0;
  let first = true;
  const take = (): RestoreFrame => {
    const parts: string[] = [];
    for (const [model, list] of models) parts.push(`${json(model)}:[${list.join(',')}]`);
    const states = `{${parts.join(',')}}`;
    const append = !first;
    first = false;
    const frame: RestoreFrame = { request: (id) => restoreStateRequest(id, states, append), entries: carried };
    models = new Map();
    carried = [];
    bytes = 0;
    return frame;
  };
  for (const entry4 of entries) {
    const [model, key, text, expiresAt] = entry4;
    const entry = expiresAt === null ? `[${json(key)},${text}]` : `[${json(key)},${text},${expiresAt}]`;
    const entryBytes = Buffer.byteLength(entry) + 1;
    if (bytes > 0 && bytes + entryBytes > maxBytes) yield take();
    // A model's name (quoted, escaped, `:[]`) counts once per frame it appears in.
    const size = entryBytes + (models.has(model) ? 0 : Buffer.byteLength(json(model)) + 3);
    let list = models.get(model);
    if (list === undefined) models.set(model, (list = []));
    list.push(entry);
    carried.push(entry4);
    bytes += size;
  }
  if (first || bytes > 0) yield take();
}

const BATCH_TAIL = Buffer.from('\n]}}');

/**
 * One executeBatch frame for messages taken from `data`: message k is data[spans[2k], spans[2k+1])
 * for each k in `items`. Messages sit one per line (`,\n` between them), the layout that lets the
 * server decode them one by one when one of them is not valid JSON (see docs/protocol.md).
 * Consecutive messages of `data` already have `,\n` between them and are copied as one run.
 * `now` is the time of the batch (ms since the epoch), against which the server judges state expiry.
 * The frame owns its memory. Throws FrameTooLargeError above `maxFrameBytes`.
 */
export function batchFrame(id: number, model: string, now: number, data: Uint8Array, spans: Int32Array, items: readonly number[], maxFrameBytes: number, checksum: Checksum = 'md5'): Buffer {
  const head = Buffer.from(`{"Cmd":"executeBatch","CmdVer":${COMMAND_VERSION},"Id":${id},"CmdOptions":{"ModelName":${json(model)},"Now":${now},"Lean":true,"Inputs":[\n`);
  let length = head.length + BATCH_TAIL.length;
  for (let k = 0; k < items.length; k++) {
    length += spans[2 * items[k]! + 1]! - spans[2 * items[k]!]!;
    if (k > 0) length += 2;
  }
  if (length > maxFrameBytes) throw new FrameTooLargeError(length, maxFrameBytes);
  const frame = Buffer.allocUnsafeSlow(FRAME_OVERHEAD + length);
  frame.write('KPYS', 0, 'latin1');
  const version = frameVersion(checksum);
  frame[VERSION_OFFSET] = version;
  frame.writeUInt32BE(length, LENGTH_OFFSET);
  let at = HEADER_BYTES + head.copy(frame, HEADER_BYTES);
  for (let k = 0; k < items.length;) {
    // The longest run of consecutive messages from items[k]: one copy, separators included.
    let last = k;
    while (last + 1 < items.length && items[last + 1] === items[last]! + 1) last++;
    if (k > 0) at += frame.write(',\n', at, 'latin1');
    const run = data.subarray(spans[2 * items[k]!]!, spans[2 * items[last]! + 1]!);
    frame.set(run, at);
    at += run.length;
    k = last + 1;
  }
  at += BATCH_TAIL.copy(frame, at);
  writeChecksum(version, frame, HEADER_BYTES, at, frame, CHECKSUM_OFFSET);
  frame.write('KPYE', at, 'latin1');
  return frame;
}
