/**
 * The records an entry produced, as bytes: the record stdout would carry with the source
 * entry's ID in front, `{"id":ID,"offset":N,"key":K,"partition":P,"model":M,"output":…}` for an
 * output and `{"id":ID,…,"input":…,"error":{…}}` for an error. The key and the output are copied
 * as the bytes they arrived as (never parsed), so integers beyond 2^53 keep every digit.
 */
import { visitOutcomes, type OutcomeVisitor } from '../engine/batch.js';
import type { BatchRange } from '../engine/ordered-merge.js';
import { RecordBytes } from '../records/byte-builder.js';
import { RecordWriter } from '../records/record-text.js';

/** What some completed ranges produced, and the entries they complete. */
export interface TurnRecords {
  outputs: Buffer[];
  errors: Buffer[];
  /** Ids of the entries every record of which is above, in completion order. */
  done: string[];
}

/**
 * Collects the records of completed ranges, a turn per range, and hands them out merged in
 * completion order. `idOf(offset)` names (and forgets) each message's source entry.
 */
export class EntryRecords {
  private readonly queue: TurnRecords[] = [];
  private queued = 0;
  private turn: TurnRecords = { outputs: [], errors: [], done: [] };
  private readonly visitor: OutcomeVisitor;

  constructor(private readonly idOf: (offset: number) => string) {
    const records = new RecordWriter();
    const scratch = new RecordBytes();
    // The entry whose record is being written: the last one marked done.
    const id = () => this.turn.done[this.turn.done.length - 1]!;
    this.visitor = {
      output: (batch, i, model, data, start, end) => {
        records.output(scratch, batch, i, model, data, start, end, id());
        this.turn.outputs.push(scratch.take());
      },
      noOutput: () => {},
      error: (batch, i, model, error) => {
        records.error(scratch, batch, i, model, error, id());
        this.turn.errors.push(scratch.take());
      },
    };
  }

  /** Add the records of a completed range; its messages count as done. */
  add(range: BatchRange): void {
    this.turn = { outputs: [], errors: [], done: [] };
    for (let i = range.from; i < range.to; i++) {
      this.turn.done.push(this.idOf(range.batch.offsets[i]!));
      visitOutcomes(range.batch, i, i + 1, this.visitor);
    }
    this.queue.push(this.turn);
    this.queued += size(this.turn);
  }

  /** Records and entries queued. */
  get size(): number {
    return this.queued;
  }

  /** The oldest queued turns merged, about `limit` records and entries (at least one turn); null when none. */
  take(limit: number): TurnRecords | null {
    if (this.queue.length === 0) return null;
    const merged: TurnRecords = { outputs: [], errors: [], done: [] };
    let n = 0;
    while (this.queue.length > 0 && (n === 0 || n + size(this.queue[0]!) <= limit)) {
      const turn = this.queue.shift()!;
      n += size(turn);
      for (const r of turn.outputs) merged.outputs.push(r);
      for (const r of turn.errors) merged.errors.push(r);
      for (const id of turn.done) merged.done.push(id);
    }
    this.queued -= n;
    return merged;
  }
}

function size(turn: TurnRecords): number {
  return turn.outputs.length + turn.errors.length + turn.done.length;
}
