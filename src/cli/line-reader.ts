/**
 * Splits a byte stream into lines without losing any and without copying them: each chunk read
 * becomes one LineBatch (the chunk and the spans of its lines). A line split across chunks is
 * gathered once, when its end arrives (its pieces are kept apart until then, so a long line costs
 * its length, not its length times its chunks). A line longer than `maxLineBytes` is not kept: its
 * first bytes and its length are (`overLimit`), and reading goes on after its newline. A final line
 * without a newline still counts; a line's trailing CR is dropped; a UTF-8 BOM at the very start is
 * skipped. Invalid UTF-8 is reported per line, not repaired.
 */
import { isUtf8 } from 'node:buffer';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Bytes kept of a line over the limit, for its error record. */
export const OVER_LIMIT_HEAD = 1024;

/** The lines of one read: line k is buf[starts[k], ends[k]); `badUtf8[k]` when it is not valid UTF-8. */
export interface LineBatch {
  buf: Buffer;
  starts: number[];
  ends: number[];
  /** Null when every line is valid UTF-8 (the common case, checked once per read). */
  badUtf8: boolean[] | null;
  /** Every line goes to this partition, whatever its key (shard mode: the partition is the shard it was read from). */
  partition?: number;
  /** Lines over the limit: line index to its whole length (its span holds only its first bytes). */
  overLimit?: Map<number, number> | null;
}

/** The line not ended yet: its pieces (gathered once, at its end), or, once over the limit, its head and length. */
class PartialLine {
  pieces: Buffer[] = [];
  length = 0;
  head: Buffer | null = null;

  add(piece: Buffer, limit: number): void {
    this.length += piece.length;
    if (this.head !== null) return;
    this.pieces.push(piece);
    if (this.length > limit) {
      this.head = Buffer.concat(this.pieces, Math.min(this.length, OVER_LIMIT_HEAD));
      this.pieces = [];
    }
  }

  get empty(): boolean {
    return this.length === 0;
  }
}

/**
 * Lines of a byte stream, a batch per chunk read (one await per chunk, not per line);
 * `shouldStop()` ends reading after the lines already received.
 */
export async function* readLines(
  input: AsyncIterable<Buffer>,
  shouldStop: () => boolean = () => false,
  maxLineBytes = Number.MAX_SAFE_INTEGER,
): AsyncGenerator<LineBatch> {
  let partial = new PartialLine();
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
    const first = chunk.indexOf(10);
    if (first === -1) {
      partial.add(chunk, maxLineBytes);
      if (shouldStop()) return;
      continue;
    }
    // The line that ends in this chunk is put in front of it, in one copy; then every line is a span.
    let buf = chunk;
    let firstEnd = first;
    let firstLength = -1;
    if (!partial.empty) {
      partial.add(chunk.subarray(0, first), maxLineBytes);
      if (partial.head !== null) {
        // Only the head stands before the newline; the rest of that line was never kept.
        firstLength = partial.length;
        buf = Buffer.concat([partial.head, chunk.subarray(first)]);
        firstEnd = partial.head.length;
      } else {
        partial.pieces.pop();
        const before = partial.length - first;
        buf = Buffer.concat([...partial.pieces, chunk], before + chunk.length);
        firstEnd = before + first;
      }
    }
    const batch: LineBatch = { buf, starts: [], ends: [], badUtf8: null, overLimit: null };
    let start = 0;
    for (let nl = firstEnd; nl !== -1; nl = buf.indexOf(10, start)) {
      const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
      const length = batch.starts.length === 0 && firstLength >= 0 ? firstLength : end - start;
      batch.starts.push(start);
      if (length > maxLineBytes) {
        (batch.overLimit ??= new Map()).set(batch.starts.length - 1, length);
        batch.ends.push(Math.min(end, start + OVER_LIMIT_HEAD));
      } else {
        batch.ends.push(end);
      }
      start = nl + 1;
    }
    partial = new PartialLine();
    if (start < buf.length) partial.add(buf.subarray(start), maxLineBytes);
    markBadUtf8(batch, start);
    yield batch;
    if (shouldStop()) return;
  }
  // Input shorter than a BOM that was a prefix of one: those bytes are the last line.
  if (head !== null && head.length > 0) partial.add(head, maxLineBytes);
  if (!partial.empty) {
    const buf = partial.head ?? Buffer.concat(partial.pieces);
    const over = partial.head !== null;
    const end = !over && buf.length > 0 && buf[buf.length - 1] === 13 ? buf.length - 1 : buf.length;
    const batch: LineBatch = { buf, starts: [0], ends: [end], badUtf8: null, overLimit: over ? new Map([[0, partial.length]]) : null };
    markBadUtf8(batch, buf.length);
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
    const overLimit = batch.overLimit ? new Map([...batch.overLimit].filter(([k]) => k >= n).map(([k, length]) => [k - n, length])) : null;
    yield { buf: batch.buf, starts: batch.starts.slice(n), ends: batch.ends.slice(n), badUtf8: batch.badUtf8?.slice(n) ?? null, overLimit };
  }
}
