/**
 * Payload bytes to a JSON object. Deliberately separate from the frame decoder: a frame can be
 * perfectly intact and still not carry a JSON object ("bad-json", reply code -1 or -3 above).
 */
import { isUtf8 } from 'node:buffer';
import { BadJsonError } from '../api/errors.js';
import type { JsonObject } from './messages.js';



/** Parse a payload into a JSON object; throws BadJsonError if it is not valid UTF-8 JSON with an object at the top. */
export function parseJsonPayload(payload: Buffer): JsonObject {
  // toString('utf8') would silently turn bad bytes into U+FFFD; Python's strict decode rejects them, so do we.
  if (!isUtf8(payload)) throw new BadJsonError('not-utf8', 'payload is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new BadJsonError('not-json', `payload is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new BadJsonError('not-object', `payload is ${what}, not a JSON object`);
  }
  return value as JsonObject;
}
