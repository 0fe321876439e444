/**
 * Reading replies without parsing what a model produced. The server writes every reply as
 * `{"Cmd":…,"Id":…,"Code":…` first, so the head is read from the front; a lean executeBatch
 * reply ends with `"Result":[…]}` (the model outputs), which is split into byte spans, never
 * parsed. Anything laid out otherwise falls back to JSON.parse.
 */
import { splitArray, valueEnd } from './json-scan.js';
import type { ReplyError } from './messages.js';

/** Who a reply answers and how it went. */
export interface ReplyHead {
  cmd: string | null;
  id: number | null;
  code: number;
}

const CMD = Buffer.from('{"Cmd":');
const ID = Buffer.from(',"Id":');
const CODE = Buffer.from(',"Code":');
const ERRORS = Buffer.from(',"Errors":');
const FILES = Buffer.from(',"Files":');
const STATE = Buffer.from(',"State":');
const RESULT = Buffer.from(',"Result":');

/** A cursor over a payload that reads the fixed parts of a reply. */
class Cursor {
  constructor(readonly buf: Buffer, public at = 0) {}

  literal(bytes: Buffer): boolean {
    if (this.buf.length - this.at < bytes.length) return false;
    for (let k = 0; k < bytes.length; k++) if (this.buf[this.at + k] !== bytes[k]) return false;
    this.at += bytes.length;
    return true;
  }

  /** The raw text of the next value, or null when there is none. */
  value(): Buffer | null {
    const end = valueEnd(this.buf, this.at, this.buf.length);
    if (end === -1) return null;
    const text = this.buf.subarray(this.at, end);
    this.at = end;
    return text;
  }
}

function parseText(text: Buffer | null): unknown {
  return text === null ? undefined : JSON.parse(text.toString('utf8'));
}

/** The head of any reply payload; throws if the payload is not a reply object. */
export function readReplyHead(payload: Buffer): ReplyHead {
  const c = new Cursor(payload);
  if (c.literal(CMD)) {
    const cmd = parseText(c.value());
    if (c.literal(ID)) {
      const id = parseText(c.value());
      if (c.literal(CODE)) {
        const code = parseText(c.value());
        if ((typeof cmd === 'string' || cmd === null) && (Number.isInteger(id) || id === null) && Number.isInteger(code)) {
          return { cmd, id: id as number | null, code: code as number };
        }
      }
    }
  }
  const parsed = JSON.parse(payload.toString('utf8')) as { Cmd?: unknown; Id?: unknown; Code?: unknown };
  if (parsed === null || typeof parsed !== 'object' || !Number.isInteger(parsed.Code)) throw new Error('reply payload is not a reply object');
  return { cmd: typeof parsed.Cmd === 'string' ? parsed.Cmd : null, id: Number.isInteger(parsed.Id) ? parsed.Id as number : null, code: parsed.Code as number };
}

/** A lean executeBatch reply (Code 0): outputs as spans of `payload`, failures and spool files aside. */
export interface LeanBatchReply {
  /** Message k's output is payload[spans[2k], spans[2k + 1]); the text `null` when there is none. */
  spans: Int32Array;
  count: number;
  /** [index, code, error] of each failed message. */
  errors: [number, number, ReplyError][];
  /** [index, path] of each message whose output went to a spool file. */
  files: [number, string][];
  /** The span of the reply's `State` value (the request's state changes), or -1, -1 when it has none. */
  stateStart: number;
  stateEnd: number;
}

/** Read a lean executeBatch reply of `expected` messages; throws if it is not one. */
export function readLeanBatchReply(payload: Buffer, expected: number): LeanBatchReply {
  const c = new Cursor(payload);
  const ok = c.literal(CMD) && c.value() && c.literal(ID) && c.value() && c.literal(CODE) && c.value();
  if (!ok || !c.literal(ERRORS)) throw new Error('executeBatch reply is not a lean batch reply');
  const errors = parseText(c.value()) as [number, number, ReplyError][];
  if (!c.literal(FILES)) throw new Error('executeBatch reply has no Files');
  const files = parseText(c.value()) as [number, string][];
  let stateStart = -1;
  let stateEnd = -1;
  if (c.literal(STATE)) {
    stateStart = c.at;
    if (c.value() === null) throw new Error('executeBatch reply has a bad State');
    stateEnd = c.at;
  }
  if (!c.literal(RESULT)) throw new Error('executeBatch reply has no Result');
  const spans = new Int32Array(expected * 2);
  const count = splitArray(payload, c.at, payload.length - 1, spans);
  if (count !== expected) throw new Error(`server answered ${count} of ${expected} batch items`);
  return { spans, count, errors, files, stateStart, stateEnd };
}
