/**
 * Splits a byte stream into lines without losing any and without copying them: each chunk read
 * becomes one LineBatch (the chunk and the spans of its lines). A line split across chunks is
 * carried into the next batch's buffer; a final line without a newline still counts; a line's
 * trailing CR is dropped; a UTF-8 BOM at the very start is skipped. Invalid UTF-8 is reported
 * per line, not repaired.
 */
import { isUtf8 } from 'node:buffer';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The lines of one read: line k is buf[starts[k], ends[k]); `badUtf8[k]` when it is not valid UTF-8. */
export interface LineBatch {
  buf: Buffer;
  starts: number[];
  ends: number[];
  /** Null when every line is valid UTF-8 (the common case, checked once per read). */
  badUtf8: boolean[] | null;
  /** Every line goes to this partition, whatever its key (shard mode: the partition is the shard it was read from). */
  partition?: number;
}

/**
 * Lines of a byte stream, a batch per chunk read (one await per chunk, not per line);
 * `shouldStop()` ends reading after the lines already received.
 */
export async function* readLines(
  input: AsyncIterable<Buffer>,
  shouldStop: () => boolean = () => false,
): AsyncGenerator<LineBatch> {
  let carry: Buffer | null = null;
  // The first bytes, until 3 are known: a BOM may arrive split across reads.
  let head: Buffer | null = Buffer.alloc(0);
  for await (let chunk of input) {
    if (head !== null) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 3 && BOM.subarray(0, head.length).equals(head)) continue;
      chunk = head.subarray(0, 3).equals(BOM) ? head.subarray(3) : head;
      head = null;
      if (chunk.length === 0) continue;
    }
    const buf: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
    const batch: LineBatch = { buf, starts: [], ends: [], badUtf8: null };
    let start = 0;
    for (let nl = buf.indexOf(10, carry === null ? 0 : carry.length); nl !== -1; nl = buf.indexOf(10, start)) {
      batch.starts.push(start);
      batch.ends.push(nl > start && buf[nl - 1] === 13 ? nl - 1 : nl);
      start = nl + 1;
    }
    carry = start < buf.length ? buf.subarray(start) : null;
    if (batch.starts.length > 0) {
      markBadUtf8(batch, start);
      yield batch;
    }
    if (shouldStop()) return;
  }
  // Input shorter than a BOM that was a prefix of one: those bytes are the last line.
  if (head !== null && head.length > 0) carry = head;
  if (carry !== null) {
    const end = carry.length > 0 && carry[carry.length - 1] === 13 ? carry.length - 1 : carry.length;
    const batch: LineBatch = { buf: carry, starts: [0], ends: [end], badUtf8: null };
    markBadUtf8(batch, carry.length);
    yield batch;
  }
}

/** One check per read; only a read that holds bad bytes is checked line by line. */
function markBadUtf8(batch: LineBatch, used: number): void {
  if (isUtf8(batch.buf.subarray(0, used))) return;
  batch.badUtf8 = batch.starts.map((s, k) => !isUtf8(batch.buf.subarray(s, batch.ends[k])));
}

/** The lines of `source` after its first `count` (the CLI's --skip, to resume a cut-short run). */
export async function* skipLines(source: AsyncIterable<LineBatch>, count: number): AsyncGenerator<LineBatch> {
  let left = count;
  for await (const batch of source) {
    if (left === 0) {
      yield batch;
      continue;
    }
    const n = Math.min(left, batch.starts.length);
    left -= n;
    if (n === batch.starts.length) continue;
    yield { buf: batch.buf, starts: batch.starts.slice(n), ends: batch.ends.slice(n), badUtf8: batch.badUtf8?.slice(n) ?? null };
  }
}
