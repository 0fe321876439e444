/**
 * One run of a source through the stage: reads the source, routes each message to its
 * partition's lane (or rejects it here), and hands completed batches to the reader in batches,
 * with backpressure both ways and a stop that never loses a message already read.
 *
 * The hot path (CLI lines) touches bytes only: one scan per line finds its key and route and
 * proves it is one `{…}`; the line's bytes are appended to its partition's batch.
 */
import { Batch, ERROR_BASE } from './batch.js';
import { OutcomeTally } from './outcome-tally.js';
import { BadInputError, type ErrorRecord, type PystageError } from '../api/errors.js';
import { isNull, Scan, scanObject } from '../protocol/json-scan.js';
import { keyHash, lineError, missingRoute, safeJson, stringValue, tooLong } from './line-fields.js';
import { OVER_LIMIT_HEAD, type LineBatch } from '../cli/line-reader.js';
import type { StageMetrics } from '../telemetry/metrics.js';
import { OrderedMerge, type BatchRange } from './ordered-merge.js';
import type { BatchSink, PartitionLane } from './partition-lane.js';
import type { Partitioner } from './partitioner.js';
import { ResultQueue } from './result-queue.js';

export type { BatchRange } from './ordered-merge.js';

/**
 * A run over an input a checkpoint partly reflects (--state-dir): a line is skipped when its partition
 * (or, rejected before one, `rejectsBelow`) already reflects its offset. Keyless lines then take their
 * partition from their offset, not a turn counter, so a resumed run routes them as the first did.
 */
export interface RunSkip {
  below: number[];
  rejectsBelow: number;
}

/** What a run needs from its stage. */
export interface RunContext {
  lanes: PartitionLane[];
  partitioner: Partitioner;
  keyField: string;
  routeField: string | null;
  ordered: boolean;
  /** Bytes one message may take; an API message beyond it is rejected here (CLI lines, by the reader). */
  maxMessageBytes: number;
  /** Completed messages that may wait for the reader before input pauses. */
  emitLimit: number;
  /** The offset of the run's first message (0, or the lines a CLI run skipped). */
  firstOffset?: number;
  /** Set for a durable CLI run (see RunSkip). */
  skip?: RunSkip | null;
  counts: { in: number; out: number; noOutput: number; errors: number; keyless: number };
  /** The stage's metrics, when enabled: fed once per completed batch. */
  metrics: StageMetrics | null;
  /** Called for the stage's first message without a key (it is spread round-robin). */
  onFirstKeyless(): void;
  /** True once the stage takes no more input. */
  closing(): boolean;
}

export class StageRun implements BatchSink {
  /** Completed ranges for the reader; once it is done with them, their lanes count their bytes free. */
  readonly results = new ResultQueue<BatchRange>((ranges) => {
    for (const { batch, from, to } of ranges) if (batch.partition !== null) this.ctx.lanes[batch.partition]?.release(batch, to - from);
  });
  private readonly merge: OrderedMerge | null;
  private readonly names: Uint8Array[];
  private readonly spans: Int32Array;
  private nextOffset: number;
  /** Messages read and not yet completed. */
  private outstanding = 0;
  private fed = false;
  private idle: (() => void) | null = null;
  private stopped = false;
  private readonly stopListeners = new Set<() => void>();
  /** Resolves on stop(): wakes input that waits for room in a lane. */
  private readonly stopSignal: Promise<void>;
  /** Messages rejected on this thread since the last read, completed together. */
  private rejects: Batch | null = null;
  private rejectErrors: ErrorRecord[] = [];
  /** Lines a checkpoint already reflected, left out of this run (--state-dir resume). */
  skipped = 0;

  constructor(private readonly ctx: RunContext) {
    this.nextOffset = ctx.firstOffset ?? 0;
    this.stopSignal = new Promise((resolve) => this.stopListeners.add(resolve));
    this.names = [Buffer.from(ctx.keyField)];
    if (ctx.routeField !== null) this.names.push(Buffer.from(ctx.routeField));
    this.spans = new Int32Array(this.names.length * 2);
    const sources = ctx.lanes.length + 1;
    this.merge = ctx.ordered ? new OrderedMerge(sources, ctx.emitLimit, (range) => this.emit(range), this.nextOffset) : null;
  }

  /** Stop reading the source (the messages already read are still finished). */
  stop(): void {
    this.stopped = true;
    for (const listener of this.stopListeners) listener();
    this.stopListeners.clear();
  }

  /** The offset of the first message not taken from the source: every one before it was taken and will complete. */
  get resumeOffset(): number {
    return this.nextOffset;
  }

  /** The reader went away: stop, and never make the source wait for it again. */
  abandon(): void {
    this.stop();
    this.results.abandon();
    this.merge?.abandon();
  }

  /** Feed CLI lines; resolves when every message read has completed. */
  runLines(source: AsyncIterable<LineBatch>): Promise<void> {
    return this.run(source, (lines) => this.addLines(lines));
  }

  /** Feed API values (batches of them); resolves when every message read has completed. */
  runValues(source: AsyncIterable<unknown[]>): Promise<void> {
    return this.run(source, (values) => this.addValues(values));
  }

  complete(batch: Batch): void {
    // One pass over the outcomes feeds the stats and the metrics; records are written from the same table later.
    const tally = OutcomeTally.of(batch);
    const counts = this.ctx.counts;
    counts.out += tally.outputs;
    counts.noOutput += tally.noOutputs;
    counts.errors += tally.errors;
    this.ctx.metrics?.observeBatch(batch, tally, performance.now());
    if (this.merge !== null) this.merge.add(batch.partition ?? this.ctx.lanes.length, batch);
    else this.emit({ batch, from: 0, to: batch.count });
    this.outstanding -= batch.count;
    if (this.outstanding === 0 && this.fed) this.idle?.();
  }

  private emit(range: BatchRange): void {
    this.results.push(range, range.to - range.from);
  }

  private async run<T>(source: AsyncIterable<T>, add: (chunk: T) => Promise<void>): Promise<void> {
    const iterator = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await this.next(iterator);
        if (next === null) {
          void iterator.return?.(undefined)?.catch(() => {});
          break;
        }
        if (next.done) break;
        await add(next.value);
        if (this.results.size > this.ctx.emitLimit) await this.results.waitForRoom(this.ctx.emitLimit / 2);
        if (this.merge !== null) await this.merge.room.wait();
        // Checked after a whole read is queued: a message read from the source is never dropped.
        if (this.ctx.closing() || this.stopped) break;
      }
    } finally {
      this.fed = true;
      if (this.outstanding > 0) await new Promise<void>((resolve) => { this.idle = resolve; });
    }
  }

  /** The source's next item, or null once stopped; a promise per call, so nothing piles up on a long-lived one. */
  private next<T>(iterator: AsyncIterator<T>): Promise<IteratorResult<T> | null> {
    if (this.stopped) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const onStop = () => resolve(null);
      this.stopListeners.add(onStop);
      iterator.next().then((r) => {
        this.stopListeners.delete(onStop);
        resolve(r);
      }, (err: unknown) => {
        this.stopListeners.delete(onStop);
        reject(err);
      });
    });
  }

  private async addLines(lines: LineBatch): Promise<void> {
    const { buf, starts, ends, badUtf8 } = lines;
    const overLimit = lines.overLimit ?? null;
    const spans = this.spans;
    for (let k = 0; k < starts.length; k++) {
      const offset = this.nextOffset++;
      this.ctx.counts.in++;
      this.outstanding++;
      const start = starts[k]!;
      const end = ends[k]!;
      const length = overLimit?.get(k);
      if (length !== undefined) {
        this.reject(offset, buf, start, end, -1, -1, tooLong('line', length, this.ctx.maxMessageBytes, end - start));
        continue;
      }
      if (badUtf8 !== null && badUtf8[k]) {
        this.reject(offset, buf, start, end, -1, -1, new BadInputError('line is not valid UTF-8'));
        continue;
      }
      const scan = scanObject(buf, start, end, this.names, spans);
      const skip = this.ctx.skip;
      if (scan !== Scan.OBJECT) {
        this.reject(offset, buf, start, end, -1, -1, lineError(scan, buf, start, end));
        continue;
      }
      let keyStart = spans[0]!;
      let keyEnd = spans[1]!;
      if (keyStart >= 0 && isNull(buf, keyStart, keyEnd)) keyStart = keyEnd = -1;
      let route: string | null = null;
      if (this.ctx.routeField !== null) {
        route = stringValue(buf, spans[2]!, spans[3]!);
        if (route === null) {
          const got = spans[2]! < 0 ? 'none' : buf.toString('utf8', spans[2], spans[3]).slice(0, 80);
          this.reject(offset, buf, start, end, keyStart, keyEnd, missingRoute(this.ctx.routeField, got));
          continue;
        }
      }
      let partition: number;
      if (lines.partition !== undefined) partition = lines.partition;
      else if (keyStart < 0) {
        partition = skip == null ? this.ctx.partitioner.roundRobin() : offset % this.ctx.lanes.length;
        if (skip != null && offset < skip.below[partition]!) {
          this.leaveOut();
          continue;
        }
        if (this.ctx.counts.keyless++ === 0) this.ctx.onFirstKeyless();
      } else {
        partition = this.ctx.partitioner.partitionOfHash(keyHash(buf, keyStart, keyEnd));
        if (skip != null && offset < skip.below[partition]!) {
          this.leaveOut();
          continue;
        }
      }
      const lane = this.ctx.lanes[partition]!;
      lane.add(this, offset, buf, start, end, keyStart, keyEnd, route);
      if (lane.full) {
        this.flushRejects();
        await Promise.race([lane.room.wait(), this.stopSignal]);
        // Stopped while waiting: the rest of this read is left untaken. Every line before
        // `resumeOffset` still completes, so a CLI run resumed there (--skip) misses nothing; waiting
        // for room first would make a slow model's drain take as long as a whole read.
        if (this.stopped) break;
      }
    }
    this.flushRejects();
  }

  /** The line just counted in is one a checkpoint reflects: count it out again. */
  private leaveOut(): void {
    this.ctx.counts.in--;
    this.outstanding--;
    this.skipped++;
  }

  private async addValues(values: unknown[]): Promise<void> {
    for (const value of values) {
      const offset = this.nextOffset++;
      this.ctx.counts.in++;
      this.outstanding++;
      if (ArrayBuffer.isView(value)) {
        // JSON.stringify would make a dict of its bytes ({"type":"Buffer","data":[…]}) and the model fail on it.
        this.rejectText(offset, Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'), null,
          new BadInputError('a message must be a JSON object; got bytes (a Buffer): write bytes to stage.stream() from its first chunk on, as JSON lines, or parse them first'));
        continue;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const text = safeJson(value);
        this.rejectText(offset, text, null, new BadInputError(`a message must be a JSON object; got ${text.slice(0, 80)}`));
        continue;
      }
      const key = (value as Record<string, unknown>)[this.ctx.keyField];
      let text: string;
      try {
        text = JSON.stringify(value);
        if (key !== undefined && key !== null && typeof key !== 'string') JSON.stringify(key);
      } catch (err) {
        this.rejectText(offset, String(value), null, new BadInputError(`a message must be JSON-serialisable: ${(err as Error).message}`));
        continue;
      }
      // Checked by characters first: a message's UTF-8 takes at most 3 bytes per UTF-16 unit.
      if (text.length * 3 > this.ctx.maxMessageBytes && Buffer.byteLength(text) > this.ctx.maxMessageBytes) {
        const length = Buffer.byteLength(text);
        this.rejectText(offset, text.slice(0, OVER_LIMIT_HEAD), key ?? null, tooLong('message', length, this.ctx.maxMessageBytes, OVER_LIMIT_HEAD));
        continue;
      }
      let route: string | null = null;
      if (this.ctx.routeField !== null) {
        const r = (value as Record<string, unknown>)[this.ctx.routeField];
        if (typeof r !== 'string') {
          this.rejectText(offset, text, key ?? null, missingRoute(this.ctx.routeField, safeJson(r)));
          continue;
        }
        route = r;
      }
      if ((key === undefined || key === null) && this.ctx.counts.keyless++ === 0) this.ctx.onFirstKeyless();
      const lane = this.ctx.lanes[this.ctx.partitioner.partitionOf(key)]!;
      lane.add(this, offset, text, 0, 0, -1, -1, route, key ?? null);
      if (lane.full) {
        this.flushRejects();
        await lane.room.wait();
      }
    }
    this.flushRejects();
  }

  private reject(offset: number, src: Uint8Array, start: number, end: number, keyStart: number, keyEnd: number, error: PystageError): void {
    if (this.ctx.skip != null && offset < this.ctx.skip.rejectsBelow) {
      this.leaveOut();
      return;
    }
    const batch = (this.rejects ??= new Batch(null, 1024, 8));
    batch.add(offset, src, start, end, keyStart, keyEnd, null);
    this.rejectErrors.push(error.toRecord());
  }

  private rejectText(offset: number, text: string, key: unknown, error: PystageError): void {
    const batch = (this.rejects ??= new Batch(null, 1024, 8));
    const i = batch.addText(offset, text, null);
    (batch.keys ??= [])[i] = key;
    this.rejectErrors.push(error.toRecord());
  }

  /** Complete the messages rejected so far (before waiting, so they never wait behind a full lane). */
  private flushRejects(): void {
    const batch = this.rejects;
    if (batch === null) return;
    const table = new Int32Array(batch.count * 2);
    for (let i = 0; i < batch.count; i++) table[2 * i] = ERROR_BASE - i;
    batch.outcomes = { models: [], width: 1, table, data: new Uint8Array(0), errors: this.rejectErrors };
    this.rejects = null;
    this.rejectErrors = [];
    this.complete(batch);
  }
}
