/**
 * A batch: the messages of one partition that travel together, as bytes. The main thread
 * appends each message's JSON text to one buffer, `,\n` between messages, so the worker can
 * splice the whole buffer into an executeBatch request without touching a message; spans
 * (start, end of the message, start, end of its key's JSON text) live in one Int32Array.
 * Once the worker answered, the batch carries its outcomes (see Outcomes) and is handed on
 * as is: no object per message on the way.
 */
import { copyBytes } from '../records/bytes.js';
import type { ErrorRecord } from '../api/errors.js';
import type { StateChanges } from '../context/state-table.js';

/** Joins messages in a batch buffer. JSON text never holds a raw newline, so the split is unambiguous. */
export const SEPARATOR = Buffer.from(',\n');

/** Spans per message in `Batch.spans`: message start, message end, key start, key end (-1 when keyless). */
export const SPAN_WIDTH = 4;

/**
 * What became of the messages of a batch. Slot `i * width + m` is message i's outcome for
 * models[m] (width = models.length), or message i's only outcome when routed (width 1).
 * table[2 * slot] >= 0: an output, bytes [table[2 * slot], table[2 * slot + 1]) of `data`;
 * NO_OUTPUT: the model returned None; <= ERROR_BASE: errors[ERROR_BASE - value].
 */
export interface Outcomes {
  models: string[];
  width: number;
  table: Int32Array;
  data: Uint8Array;
  errors: ErrorRecord[];
  /** The partition's state changes of this batch, in order (absent when nothing changed). */
  state?: StateChanges;
}

export const NO_OUTPUT = -1;
export const ERROR_BASE = -2;

/** Messages of one partition (or rejected before reaching one), with their outcomes once known. */
export class Batch {
  /** The messages' bytes, `,\n` between them; `length` bytes are used. */
  buf: Buffer;
  length = 0;
  count = 0;
  spans: Int32Array;
  /** The stage offset of each message (offsets grow within a batch). */
  offsets: Float64Array;
  /** Per message, the one model to run; null when every message runs every model. */
  routes: (string | null)[] | null = null;
  /** When the batch first left for its worker (ms since the epoch): the time its state expiry is judged at. */
  now: number | undefined = undefined;
  /** API only: the key of each message as the user gave it. */
  keys: unknown[] | null = null;
  /** Set when done. */
  outcomes: Outcomes | null = null;
  /** When its first message was added (performance.now()), for the latency metric. */
  readonly createdAt = performance.now();

  /**
   * `capacity` bytes and room for `items` messages to start with (both grow when needed). The lane
   * sizes them by its recent batches (BatchSizer): memory allocated per batch is what V8 counts as
   * external memory, and allocating far more than a batch needs makes it run full collections.
   */
  constructor(readonly partition: number | null, capacity: number, items: number) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.spans = new Int32Array(items * SPAN_WIDTH);
    this.offsets = new Float64Array(items);
  }

  /**
   * Append one message: bytes [start, end) of `src`, its key at [keyStart, keyEnd) of `src`
   * (-1 when keyless). Returns the message's index.
   */
  add(offset: number, src: Uint8Array, start: number, end: number, keyStart: number, keyEnd: number, route: string | null): number {
    const i = this.count;
    if (i > 0) this.write(SEPARATOR, 0, SEPARATOR.length);
    this.write(src, start, end);
    return this.index(i, offset, keyStart < 0 ? -1 : this.length - (end - keyStart), keyStart < 0 ? -1 : this.length - (end - keyEnd), route);
  }

  /** Append one message given as JSON text (the API). Returns the message's index. */
  addText(offset: number, text: string, route: string | null): number {
    const i = this.count;
    if (i > 0) this.write(SEPARATOR, 0, SEPARATOR.length);
    this.reserve(this.length + text.length * 3);
    this.length += this.buf.write(text, this.length, 'utf8');
    return this.index(i, offset, -1, -1, route);
  }

  /** Record message i, which ends at `length`; its key span is absolute in `buf`. */
  private index(i: number, offset: number, keyStart: number, keyEnd: number, route: string | null): number {
    const start = i === 0 ? 0 : this.spans[(i - 1) * SPAN_WIDTH + 1]! + SEPARATOR.length;
    if (i * SPAN_WIDTH >= this.spans.length) this.growItems();
    const s = i * SPAN_WIDTH;
    this.spans[s] = start;
    this.spans[s + 1] = this.length;
    this.spans[s + 2] = keyStart;
    this.spans[s + 3] = keyEnd;
    this.offsets[i] = offset;
    if (route !== null || this.routes !== null) {
      this.routes ??= new Array<string | null>(i).fill(null);
      this.routes.push(route);
    }
    this.count = i + 1;
    return i;
  }

  /** Message i's JSON text (or raw input line). */
  text(i: number): Buffer {
    return this.buf.subarray(this.spans[i * SPAN_WIDTH]!, this.spans[i * SPAN_WIDTH + 1]!);
  }

  /** Message i's key as JSON text, or null when it has none. */
  keyText(i: number): Buffer | null {
    const s = this.spans[i * SPAN_WIDTH + 2]!;
    return s < 0 ? null : this.buf.subarray(s, this.spans[i * SPAN_WIDTH + 3]!);
  }

  /** Every message failed alike (a lost partition, a rejected command). */
  failAll(error: ErrorRecord): void {
    this.outcomes = { models: [], width: 1, table: new Int32Array(this.count * 2).fill(ERROR_BASE), data: new Uint8Array(0), errors: [error] };
  }

  private write(src: Uint8Array, start: number, end: number): void {
    this.reserve(this.length + end - start);
    this.length = copyBytes(this.buf, this.length, src, start, end);
  }

  private reserve(need: number): void {
    if (need <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  private growItems(): void {
    const spans = new Int32Array(this.spans.length * 2);
    spans.set(this.spans);
    this.spans = spans;
    const offsets = new Float64Array(this.offsets.length * 2);
    offsets.set(this.offsets);
    this.offsets = offsets;
  }
}

/**
 * How big the next batch of a lane will be: a maximum over its recent batches that decays by an
 * eighth per batch, so a burst is remembered for a while and a quiet stream goes back to small
 * batches. A lone message then gets a batch from Buffer's shared pool instead of 64 KiB of its own.
 */
export class BatchSizer {
  private bytes = 0;
  private items = 0;

  /** A batch of `length` bytes and `count` messages closed. */
  observe(length: number, count: number): void {
    this.bytes = Math.max(length, this.bytes - (this.bytes >> 3));
    this.items = Math.max(count, this.items - (this.items >> 3));
  }

  /** A batch sized for what recent batches held, with a quarter to spare. */
  create(partition: number | null): Batch {
    return new Batch(partition, Math.max(256, (this.bytes + (this.bytes >> 2) + 255) & ~255), Math.max(4, this.items + (this.items >> 2)));
  }
}

/** What a consumer does with each outcome of a batch; called in message order, then model order. */
export interface OutcomeVisitor {
  output(batch: Batch, i: number, model: string, data: Uint8Array, start: number, end: number): void;
  noOutput(batch: Batch, i: number, model: string): void;
  error(batch: Batch, i: number, model: string | null, error: ErrorRecord): void;
}

/** Walk the outcomes of messages [from, to) of a completed batch. */
export function visitOutcomes(batch: Batch, from: number, to: number, visitor: OutcomeVisitor): void {
  const o = batch.outcomes!;
  const { table, width, models } = o;
  for (let i = from; i < to; i++) {
    for (let m = 0; m < width; m++) {
      const slot = i * width + m;
      const start = table[2 * slot]!;
      // Routed batches run one model per message; otherwise slot m is models[m] (none after failAll).
      const model = batch.routes !== null ? batch.routes[i]! : models[m] ?? null;
      if (start >= 0) visitor.output(batch, i, model!, o.data, start, table[2 * slot + 1]!);
      else if (start === NO_OUTPUT) visitor.noOutput(batch, i, model!);
      else visitor.error(batch, i, model, o.errors[ERROR_BASE - start]!);
    }
  }
}
