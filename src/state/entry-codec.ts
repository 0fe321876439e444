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

/** An entry back from its stored key and value; throws on bytes this codec did not write. */
export function decodeEntry(key: Uint8Array, value: Uint8Array): { partition: number; entry: StoredEntry } {
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const v = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (k[0] !== ENTRY || k.length < 7) throw new Error('not a state entry key');
  const partition = k.readUInt32BE(1);
  const sep = k.indexOf(0, 5);
  if (sep < 0) throw new Error('a state entry key without its separator');
  const model = JSON.parse(k.toString('utf8', 5, sep)) as string;
  const flags = v[0]!;
  let at = 1;
  let expiresAt: number | null = null;
  if (flags & EXPIRES) {
    expiresAt = v.readDoubleBE(at);
    at += 8;
  }
  let keyJson: string;
  if (flags & KEY_INSIDE) {
    const length = v.readUInt32BE(at);
    keyJson = v.toString('utf8', at + 4, at + 4 + length);
    at += 4 + length;
  } else keyJson = k.toString('utf8', sep + 1);
  const stateKey = JSON.parse(keyJson);
  if (typeof model !== 'string' || typeof stateKey !== 'string') throw new Error('a state entry whose model or key is not a string');
  return { partition, entry: { model, key: stateKey, text: v.toString('utf8', at), expiresAt } };
}
