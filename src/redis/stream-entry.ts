/**
 * A stream entry as the stage sees it: its ID and the message's JSON bytes. An entry with a
 * field `data` is that message, bytes untouched but for line feeds between tokens, which become
 * spaces (see foldLineFeeds; a `data` that is not one JSON object becomes
 * an error record downstream, like a bad stdin line); otherwise its fields form the message,
 * every value a string. An entry deleted from the stream while pending has no message.
 */
import { isUtf8 } from 'node:buffer';
import type { LineBatch } from '../cli/line-reader.js';
import { foldLineFeeds } from '../protocol/json-scan.js';

const DATA = Buffer.from('data');

/** One entry read from the source stream. */
export interface StreamEntry {
  id: string;
  /** The message as JSON bytes; null when the entry was deleted (XDEL, trimming) before it was read back. */
  data: Buffer | null;
  /** Why the entry's bytes are not a message at all (invalid UTF-8), when so. */
  problem: string | null;
  /** Times Redis delivered it (set for entries read back from a pending list or claimed; 1 for new ones). */
  deliveries: number;
}

/** The entry `[id, [field, value, …] | null]` of an XREADGROUP or XAUTOCLAIM reply. */
export function toEntry(raw: unknown): StreamEntry {
  const [idBytes, fields] = raw as [Buffer, Buffer[] | null];
  const id = idBytes.toString('latin1');
  if (fields === null || fields === undefined) return { id, data: null, problem: null, deliveries: 1 };
  for (let f = 0; f + 1 < fields.length; f += 2) {
    if (fields[f]!.equals(DATA)) {
      const data = fields[f + 1]!;
      // Pretty-printed JSON is fine; its line feeds must not reach the batch, which is one message per line.
      return { id, data: foldLineFeeds(data), problem: isUtf8(data) ? null : 'field "data" is not valid UTF-8', deliveries: 1 };
    }
  }
  const message: Record<string, string> = {};
  for (let f = 0; f + 1 < fields.length; f += 2) {
    const name = fields[f]!;
    const value = fields[f + 1]!;
    if (!isUtf8(name) || !isUtf8(value)) return { id, data: Buffer.from(fieldsText(fields)), problem: `field "${name.toString('utf8')}" is not valid UTF-8`, deliveries: 1 };
    message[name.toString('utf8')] = value.toString('utf8');
  }
  return { id, data: Buffer.from(JSON.stringify(message)), problem: null, deliveries: 1 };
}

/** Entries with messages as one LineBatch (the stdin path's shape): one line per entry, in order; `partition` forces theirs. */
export function entriesBatch(entries: StreamEntry[], partition?: number): LineBatch {
  const parts: Buffer[] = [];
  const batch: LineBatch = { buf: Buffer.alloc(0), starts: [], ends: [], badUtf8: null, ...(partition === undefined ? {} : { partition }) };
  let at = 0;
  entries.forEach((entry, k) => {
    parts.push(entry.data!);
    batch.starts.push(at);
    at += entry.data!.length;
    batch.ends.push(at);
    if (entry.problem !== null || !isUtf8(entry.data!)) (batch.badUtf8 ??= new Array<boolean>(entries.length).fill(false))[k] = true;
  });
  batch.buf = Buffer.concat(parts, at);
  return batch;
}

/** A readable rendering of fields that cannot be decoded, for the error record. */
function fieldsText(fields: Buffer[]): string {
  const pairs: string[] = [];
  for (let f = 0; f + 1 < fields.length; f += 2) pairs.push(`${fields[f]!.toString('utf8')}=${fields[f + 1]!.toString('utf8')}`);
  return pairs.join(' ');
}

/** The message of an entry as a plain object (the API), or null when the entry was deleted. Parsing rounds integers beyond 2^53. */
export function entryMessage(entry: StreamEntry): unknown {
  if (entry.data === null) return null;
  try {
    return JSON.parse(entry.data.toString('utf8'));
  } catch {
    return entry.data.toString('utf8');
  }
}
