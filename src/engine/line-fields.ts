/**
 * What the run reads from a line's bytes besides routing it: a string field's value, the key's partition
 * hash, and the precise error of a line that is not one JSON object (error paths may parse).
 */
import { BadInputError, RoutingError, type PystageError } from '../api/errors.js';
import { hasBackslash, Scan } from '../protocol/json-scan.js';
import { fnv1a, fnv1aBytes } from './partitioner.js';

/** The precise reason a line is not one JSON object (an error path: parsing it is fine here). */
export function lineError(scan: number, buf: Buffer, start: number, end: number): PystageError {
  if (scan === Scan.EMPTY) return new BadInputError('line is empty; expected one JSON object per line');
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8', start, end));
  } catch (err) {
    return new BadInputError(`line is not valid JSON: ${(err as Error).message}`);
  }
  const got = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
  return new BadInputError(`line is JSON but not an object (got ${got})`);
}

/** The value of a JSON string at buf[s, e) (quotes included), or null when it is not a string. */
export function stringValue(buf: Buffer, s: number, e: number): string | null {
  if (s < 0 || buf[s] !== 0x22) return null;
  if (!hasBackslash(buf, s, e)) return buf.toString('utf8', s + 1, e - 1);
  try {
    return JSON.parse(buf.toString('utf8', s, e)) as string;
  } catch {
    return null;
  }
}

/** The partition hash of a key's JSON text: a string hashes as its value, anything else as its text. */
export function keyHash(buf: Buffer, s: number, e: number): number {
  if (buf[s] !== 0x22) return fnv1aBytes(buf, s, e);
  if (!hasBackslash(buf, s, e)) return fnv1aBytes(buf, s + 1, e - 1);
  const value = stringValue(buf, s, e);
  return value === null ? fnv1aBytes(buf, s, e) : fnv1a(value);
}

export function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The error of a message without the field that names its model; `got` is what the field held, shortened. */
export function missingRoute(field: string, got: string): RoutingError {
  return new RoutingError(`message has no string field "${field}" naming its model (got ${got})`);
}

/** A message over maxMessageBytes: its length and the limit; its record keeps only its first bytes. */
export function tooLong(what: 'line' | 'message', length: number, limit: number, kept: number): BadInputError {
  return new BadInputError(`${what} is ${length} bytes, over the limit of ${limit} (--max-line-bytes, maxMessageBytes); only its first ${kept} bytes are kept here`, { type: 'MessageTooLarge' });
}
