/**
 * Streaming frame decoder, byte-compatible with py/pystage/frame_decoder.py (proven by the
 * shared vectors in test/vectors/). Fed arbitrary chunks, it reports in stream order:
 *   onFrame(payload)            a good frame
 *   onError(kind, payload|null) a damaged frame; see resync rules below
 *   onSkipped(n)                n garbage bytes dropped while looking for BEGIN
 *
 * Resync: after bad-version, too-long or missing-end only the 4 BEGIN bytes are dropped and
 * scanning restarts right after them, so a good frame hidden inside a damaged frame's
 * claimed payload is still found. bad-checksum consumes the whole frame.
 *
 * Memory and copies: a frame that lies inside one chunk is handed out as a view of that chunk
 * (no copy). A frame split across chunks is copied exactly once, into a buffer of its payload
 * size, as its bytes arrive; the decoder holds nothing else but a few header bytes. Callbacks
 * instead of returned event arrays: nothing is allocated per chunk on the hot path.
 */
import { InvalidOptionError } from '../api/errors.js';
import {
  BEGIN,
  CHECKSUM_OFFSET,
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_OVERHEAD,
  HEADER_BYTES,
  LENGTH_OFFSET,
  MAX_ENCODABLE_PAYLOAD_BYTES,
  TRAILER_BYTES,
  VERSION_OFFSET,
} from './frame-constants.js';
import type { FrameErrorKind } from './frame-errors.js';
import { checksumMatches, knownVersion } from './checksum.js';

/** Where a FrameDecoder sends what it finds, and its limit. */
export interface FrameDecoderOptions {
  /** Largest accepted LENGTH; a bigger one is reported as "too-long". Default 64 MiB. */
  maxFrameBytes?: number;
  /** A good frame. `payload` may be a view into a pushed chunk: it stays valid, but keeps that chunk alive. */
  onFrame(payload: Buffer): void;
  /** A damaged frame; `payload` is set only for "bad-checksum". */
  onError(kind: FrameErrorKind, payload: Buffer | null): void;
  /** Garbage dropped before a BEGIN marker (for logging; no reply is due). */
  onSkipped?(count: number): void;
}

const K = 0x4b;
const P = 0x50;
const Y = 0x59;
const S = 0x53;
const E = 0x45;

// Where the bytes received since the last event stand. Outside SCAN they are held in `held`
// (header and trailer) and `body` (payload), because the frame started in an earlier chunk.
const SCAN = 0;
const HEADER = 1;
const BODY = 2;
const TRAILER = 3;

const noop = (): void => {};

/** Incremental decoder of a byte stream of frames; see the file comment for the contract. */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly onFrame: (payload: Buffer) => void;
  private readonly onError: (kind: FrameErrorKind, payload: Buffer | null) => void;
  private readonly onSkipped: (count: number) => void;

  private state = SCAN;
  /** SCAN: how many bytes of BEGIN ended the previous chunk (0..3); the bytes themselves are known. */
  private matched = 0;
  /** HEADER: header bytes in `held`. TRAILER: trailer bytes in `held` after the header. */
  private filled = 0;
  /** Header (25 bytes) then trailer (4 bytes) of a frame split across chunks. */
  private readonly held = Buffer.alloc(FRAME_OVERHEAD);
  private body: Buffer | null = null;
  private bodyFilled = 0;
  /** Inputs still to consume: bytes to rescan after a resync, and chunks pushed from inside a callback. */
  private readonly queue: Buffer[] = [];
  private running = false;

  constructor(options: FrameDecoderOptions) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 0 || max > MAX_ENCODABLE_PAYLOAD_BYTES) {
      throw new InvalidOptionError(`maxFrameBytes must be an integer from 0 to ${MAX_ENCODABLE_PAYLOAD_BYTES}, got ${max}`);
    }
    this.maxFrameBytes = max;
    this.onFrame = options.onFrame;
    this.onError = options.onError;
    this.onSkipped = options.onSkipped ?? noop;
  }

  /**
   * Feed the next bytes of the stream; callbacks run synchronously before this returns.
   * A chunk pushed from inside a callback is queued behind the current one. If a callback
   * throws, the error propagates, the rest of the input is dropped and the decoder rescans
   * from the next chunk as if after garbage.
   */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.running) {
      this.queue.push(chunk);
      return;
    }
    this.running = true;
    try {
      this.consume(chunk);
      while (this.queue.length > 0) this.consume(this.queue.shift()!);
    } catch (err) {
      this.reset();
      throw err;
    } finally {
      this.running = false;
    }
  }

  /** Bytes received that are not yet resolved into an event (a partial frame or partial BEGIN). */
  get bufferedBytes(): number {
    let n = 0;
    for (const b of this.queue) n += b.length;
    switch (this.state) {
      case SCAN:
        return n + this.matched;
      case HEADER:
        return n + this.filled;
      case BODY:
        return n + HEADER_BYTES + this.bodyFilled;
      default:
        return n + HEADER_BYTES + this.body!.length + this.filled;
    }
  }

  /**
   * Forget any partial frame, e.g. after the connection was replaced. Called from inside a
   * callback, it does not stop the rest of the chunk being decoded from being delivered.
   */
  reset(): void {
    this.state = SCAN;
    this.matched = 0;
    this.filled = 0;
    this.body = null;
    this.bodyFilled = 0;
    this.queue.length = 0;
  }

  private consume(b: Buffer): void {
    const n = b.length;
    let p = 0;
    while (p < n) {
      if (this.state !== SCAN) {
        p = this.continueSplitFrame(b, p, n);
        if (p < 0) return;
        continue;
      }
      if (this.matched > 0) {
        p = this.continueBegin(b, p, n);
        continue;
      }

      // Fast path: look for a frame that lies entirely in this chunk.
      if (!(n - p >= 4 && b[p] === K && b[p + 1] === P && b[p + 2] === Y && b[p + 3] === S)) {
        const begin = b.indexOf(BEGIN, p);
        if (begin < 0) {
          this.skipToPossibleBegin(b, p, n);
          return;
        }
        this.onSkipped(begin - p);
        p = begin;
      }
      const available = n - p;
      if (available > VERSION_OFFSET && !knownVersion(b[p + VERSION_OFFSET]!)) {
        p += 4;
        this.onError('bad-version', null);
        continue;
      }
      if (available < HEADER_BYTES) {
        b.copy(this.held, 0, p, n);
        this.filled = available;
        this.state = HEADER;
        return;
      }
      const length = b.readUInt32BE(p + LENGTH_OFFSET);
      if (length > this.maxFrameBytes) {
        p += 4;
        this.onError('too-long', null);
        continue;
      }
      const start = p + HEADER_BYTES;
      const end = start + length;
      if (end + TRAILER_BYTES > n) {
        b.copy(this.held, 0, p, start);
        this.startBody(length);
        p = start;
        continue;
      }
      if (b[end] !== K || b[end + 1] !== P || b[end + 2] !== Y || b[end + 3] !== E) {
        p += 4;
        this.onError('missing-end', null);
        continue;
      }
      const ok = checksumMatches(b[p + VERSION_OFFSET]!, b, start, end, b, p + CHECKSUM_OFFSET);
      const payload = b.subarray(start, end);
      p = end + TRAILER_BYTES;
      if (ok) this.onFrame(payload);
      else this.onError('bad-checksum', payload);
    }
  }

  /** No BEGIN in b[p, n): drop it all except a tail that may be the start of a split BEGIN. */
  private skipToPossibleBegin(b: Buffer, p: number, n: number): void {
    let keep = 0;
    for (let k = Math.min(3, n - p); k > 0; k--) {
      if (b[n - k] === K && (k < 2 || b[n - k + 1] === P) && (k < 3 || b[n - k + 2] === Y)) {
        keep = k;
        break;
      }
    }
    if (n - p - keep > 0) this.onSkipped(n - p - keep);
    this.matched = keep;
  }

  /** Continue matching a BEGIN whose first `matched` bytes ended the previous chunk. */
  private continueBegin(b: Buffer, p: number, n: number): number {
    let m = this.matched;
    while (p < n) {
      if (b[p] !== BEGIN[m]) {
        // Not a BEGIN after all: the held bytes were garbage; b[p] itself is rescanned.
        this.matched = 0;
        this.onSkipped(m);
        return p;
      }
      p++;
      if (++m === 4) {
        BEGIN.copy(this.held, 0);
        this.matched = 0;
        this.filled = 4;
        this.state = HEADER;
        return p;
      }
    }
    this.matched = m;
    return p;
  }

  private startBody(length: number): void {
    // allocUnsafe: every byte is overwritten before the payload is handed out.
    this.body = Buffer.allocUnsafe(length);
    this.bodyFilled = 0;
    this.filled = 0;
    this.state = length === 0 ? TRAILER : BODY;
  }

  /**
   * Take bytes of a frame that started in an earlier chunk. Returns the new position, or -1
   * when a resync queued bytes to rescan (the rest of b is queued behind them).
   */
  private continueSplitFrame(b: Buffer, p: number, n: number): number {
    const held = this.held;
    if (this.state === HEADER) {
      const take = Math.min(HEADER_BYTES - this.filled, n - p);
      b.copy(held, this.filled, p, p + take);
      this.filled += take;
      p += take;
      if (this.filled > VERSION_OFFSET && !knownVersion(held[VERSION_OFFSET]!)) {
        this.rescanAfterBegin(b, p, this.filled);
        this.onError('bad-version', null);
        return -1;
      }
      if (this.filled < HEADER_BYTES) return p;
      const length = held.readUInt32BE(LENGTH_OFFSET);
      if (length > this.maxFrameBytes) {
        this.rescanAfterBegin(b, p, HEADER_BYTES);
        this.onError('too-long', null);
        return -1;
      }
      this.startBody(length);
      return p;
    }
    const body = this.body!;
    if (this.state === BODY) {
      const take = Math.min(body.length - this.bodyFilled, n - p);
      b.copy(body, this.bodyFilled, p, p + take);
      this.bodyFilled += take;
      p += take;
      if (this.bodyFilled === body.length) this.state = TRAILER;
      return p;
    }
    const take = Math.min(TRAILER_BYTES - this.filled, n - p);
    b.copy(held, HEADER_BYTES + this.filled, p, p + take);
    this.filled += take;
    p += take;
    if (this.filled < TRAILER_BYTES) return p;
    const t = HEADER_BYTES;
    if (held[t] !== K || held[t + 1] !== P || held[t + 2] !== Y || held[t + 3] !== E) {
      this.rescanAfterBegin(b, p, FRAME_OVERHEAD, body);
      this.onError('missing-end', null);
      return -1;
    }
    const ok = checksumMatches(held[VERSION_OFFSET]!, body, 0, body.length, held, CHECKSUM_OFFSET);
    this.state = SCAN;
    this.body = null;
    this.filled = 0;
    if (ok) this.onFrame(body);
    else this.onError('bad-checksum', body);
    return p;
  }

  /**
   * Resync for a frame that started in an earlier chunk: everything after its BEGIN
   * (held header/trailer bytes up to `heldBytes`, the body if any, then the rest of b)
   * is queued to be scanned again, ahead of anything queued before.
   */
  private rescanAfterBegin(b: Buffer, p: number, heldBytes: number, body: Buffer | null = null): void {
    const headerEnd = Math.min(heldBytes, HEADER_BYTES);
    // Copied because `held` is reused as soon as the rescan finds the next BEGIN.
    const again: Buffer[] = [Buffer.from(this.held.subarray(4, headerEnd))];
    if (body !== null && body.length > 0) again.push(body);
    if (heldBytes > HEADER_BYTES) again.push(Buffer.from(this.held.subarray(HEADER_BYTES, heldBytes)));
    if (p < b.length) again.push(b.subarray(p));
    this.state = SCAN;
    this.matched = 0;
    this.filled = 0;
    this.body = null;
    this.bodyFilled = 0;
    this.queue.unshift(...again);
  }
}
