/**
 * Global input order for `ordered` runs. Each source (a partition, or the main thread's own
 * rejections) completes its messages in offset order, so the global order is a merge of those
 * streams: release the runs of consecutive offsets from whichever source holds the next one.
 */
import type { Batch } from './batch.js';
import { Room } from './room.js';

/** Messages [from, to) of a completed batch. */
export interface BatchRange {
  batch: Batch;
  from: number;
  to: number;
}

interface Held {
  batch: Batch;
  cursor: number;
}

export class OrderedMerge {
  private readonly sources: Held[][];
  private next: number;
  /** Messages completed but not released yet. */
  held = 0;
  private abandoned = false;
  /** Closed while more than `limit` messages wait for an earlier one. */
  readonly room = new Room();

  /** `first`: the run's first offset (a CLI run resumed with --skip starts past 0). */
  constructor(sources: number, private readonly limit: number, private readonly release: (range: BatchRange) => void, first = 0) {
    this.next = first;
    this.sources = Array.from({ length: sources }, () => []);
  }

  /** A completed batch of `source`; releases whatever is now next in order. */
  add(source: number, batch: Batch): void {
    if (this.abandoned) {
      this.release({ batch, from: 0, to: batch.count });
      return;
    }
    this.sources[source]!.push({ batch, cursor: 0 });
    this.held += batch.count;
    for (let source = this.find(); source !== null; source = this.find()) {
      const queue = this.sources[source]!;
      const head = queue[0]!;
      const from = head.cursor;
      while (head.cursor < head.batch.count && head.batch.offsets[head.cursor] === this.next) {
        head.cursor++;
        this.next++;
      }
      this.held -= head.cursor - from;
      if (head.cursor === head.batch.count) queue.shift();
      this.release({ batch: head.batch, from, to: head.cursor });
    }
    if (this.held > this.limit) this.room.close();
    else if (this.held <= this.limit / 2) this.room.open();
  }

  /** Give up on order: nothing waits any more (the reader went away). */
  abandon(): void {
    // What waits here is handed on at once (to a reader that is gone): its lane counts its bytes free.
    this.abandoned = true;
    for (const queue of this.sources) {
      for (const { batch, cursor } of queue.splice(0)) this.release({ batch, from: cursor, to: batch.count });
    }
    this.held = 0;
    this.room.open();
  }

  private find(): number | null {
    for (let s = 0; s < this.sources.length; s++) {
      const head = this.sources[s]![0];
      if (head !== undefined && head.batch.offsets[head.cursor] === this.next) return s;
    }
    return null;
  }
}
