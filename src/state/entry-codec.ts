/**
 * How one state entry lies in the embedded store, byte for byte. The model name and the key are
 * stored as their JSON text (a lone surrogate in a key is `\ud800` there, never a replacement
 * character), the value as the exact UTF-8 text the Python server wrote.
 *
 *   entry key:   0x01 | partition (u32 BE) | model JSON | 0x00 | key JSON        (sorted by partition, then model)
 *                0x01 | partition | model JSON | 0x00 | 0x01 | sha256(key JSON)   when that is too long for LMDB
 *   entry value: flags (bit 0: expires, bit 1: key inside) | [expiresAt f64 BE] | [u32 length | key JSON] | text
 *   meta key:    0x02 | partition (u32 BE)   → the partition's last checkpoint meta, JSON
 *   format key:  0x00 "pystage-format"       → { format, version, partitions }, JSON
 *
 * JSON text never holds a raw 0x00 byte nor starts with 0x01, so the separators cannot collide.
 */
import { createHash } from 'node:crypto';
import type { StoredEntry } from './state-store.js';

const ENTRY = 0x01;
const META = 0x02;
const EXPIRES = 1;
const KEY_INSIDE = 2;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** LMDB's key limit with 4 KiB pages is 1,978 bytes; stay below it. */
const MAX_KEY_BYTES = 1900;

export const FORMAT_KEY = Buffer.from('\x00pystage-format', 'latin1');

/** The bytes every entry key of a partition (and model, when given) starts with. */
export function entryPrefix(partition: number, model?: string): Buffer {
  const head = Buffer.alloc(5);
  head[0] = ENTRY;
  head.writeUInt32BE(partition, 1);
  if (model === undefined) return head;
  return Buffer.concat([head, Buffer.from(JSON.stringify(model)), Buffer.from([0])]);
}

/** The first key after every key that starts with `prefix` (for range ends). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

export function metaKey(partition: number): Buffer {
  const key = Buffer.alloc(5);
  key[0] = META;
  key.writeUInt32BE(partition, 1);
  return key;
}

/** The store key of (partition, model, key), and the key's JSON when it is too long to be in it. */
export function entryKey(partition: number, model: string, key: string): { key: Buffer; inside: Buffer | null } {
  const keyJson = Buffer.from(JSON.stringify(key));
  const prefix = entryPrefix(partition, model);
  if (prefix.length + keyJson.length <= MAX_KEY_BYTES) return { key: Buffer.concat([prefix, keyJson]), inside: null };
  const digest = createHash('sha256').update(keyJson).digest();
  return { key: Buffer.concat([prefix, Buffer.from([1]), digest]), inside: keyJson };
}

export function encodeValue(text: string, expiresAt: number | null, inside: Buffer | null): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(1 + (expiresAt === null ? 0 : 8) + (inside === null ? 0 : 4));
  let at = 1;
  head[0] = (expiresAt === null ? 0 : EXPIRES) | (inside === null ? 0 : KEY_INSIDE);
  if (expiresAt !== null) at = head.writeDoubleBE(expiresAt, at);
  if (inside !== null) head.writeUInt32BE(inside.length, at);
  return Buffer.concat(inside === null ? [head, body] : [head, inside, body]);
}

/** One decoded entry; a decoder reuses it for every entry (copy what you keep). */
export interface DecodedEntry extends StoredEntry { partition: number }

/**
 * Decodes stored entries back, fast enough to restore a million keys in about a second: one reused
 * result, the model's name decoded once per run of entries of the same model (they are stored together).
 */
export class EntryDecoder {
  private readonly out: DecodedEntry = { partition: 0, model: '', key: '', text: '', expiresAt: null };
  private modelBytes: Buffer = Buffer.alloc(0);

  /** Throws on bytes this codec did not write. */
  decode(key: Uint8Array, value: Uint8Array): DecodedEntry {
    const k = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    const v = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (k[0] !== ENTRY || k.length < 7 || v.length < 1) throw new Error('not a state entry');
    const out = this.out;
    out.partition = k.readUInt32BE(1);
    const sep = k.indexOf(0, 5);
    if (sep < 0) throw new Error('a state entry key without its separator');
    if (sep - 5 !== this.modelBytes.length || k.compare(this.modelBytes, 0, this.modelBytes.length, 5, sep) !== 0) {
      this.modelBytes = Buffer.from(k.subarray(5, sep));
      out.model = jsonString(k, 5, sep);
    }
    const flags = v[0]!;
    let at = 1;
    out.expiresAt = null;
    if (flags & EXPIRES) {
      out.expiresAt = v.readDoubleBE(at);
      at += 8;
    }
    if (flags & KEY_INSIDE) {
      const length = v.readUInt32BE(at);
      out.key = jsonString(v, at + 4, at + 4 + length);
      at += 4 + length;
    } else out.key = jsonString(k, sep + 1, k.length);
    out.text = v.toString('utf8', at);
    return out;
  }
}

/** The string whose JSON text is buf[start, end): sliced when it holds no escape, else parsed. */
function jsonString(buf: Buffer, start: number, end: number): string {
  if (buf[start] !== QUOTE || buf[end - 1] !== QUOTE || end - start < 2) throw new Error('a stored name is not a JSON string');
  const slash = buf.indexOf(BACKSLASH, start);
  if (slash < 0 || slash >= end) return buf.toString('utf8', start + 1, end - 1);
  const value: unknown = JSON.parse(buf.toString('utf8', start, end));
  if (typeof value !== 'string') throw new Error('a stored name is not a JSON string');
  return value;
}
