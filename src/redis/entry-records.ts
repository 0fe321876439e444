/**
 * The records an entry produced, as bytes: the record stdout would carry with the source
 * entry's ID in front, `{"id":ID,"offset":N,"key":K,"partition":P,"model":M,"output":…}` for an
 * output and `{"id":ID,…,"line":…,"error":{…}}` for an error. The key and the output are copied
 * as the bytes they arrived as (never parsed), so integers beyond 2^53 keep every digit.
 */
import { visitOutcomes, type Batch, type OutcomeVisitor } from '../batch.js';
import type { ErrorRecord } from '../errors.js';
import type { BatchRange } from '../ordered-merge.js';

/** What the ranges of one turn produced, and which entries they complete. */
export interface TurnRecords {
  outputs: Buffer[];
  errors: Buffer[];
  /** Offsets of the messages every record of which is above, in completion order. */
  done: number[];
}

/** Collects the records of completed ranges; `idOf(offset)` names each message's source entry. */
export class EntryRecords {
  private turn: TurnRecords = { outputs: [], errors: [], done: [] };
  private readonly visitor: OutcomeVisitor;

  constructor(private readonly idOf: (offset: number) => string) {
    const head = (batch: Batch, i: number): string => {
      const key = batch.keyText(i);
      return `{"id":${JSON.stringify(this.idOf(batch.offsets[i]!))},"offset":${batch.offsets[i]},"key":${key === null ? 'null' : key.toString('utf8')}`;
    };
    this.visitor = {
      output: (batch, i, model, data, start, end) => {
        const text = `${head(batch, i)},"partition":${batch.partition},"model":${JSON.stringify(model)},"output":`;
        const prefix = Buffer.from(text);
        const record = Buffer.allocUnsafe(prefix.length + (end - start) + 1);
        prefix.copy(record, 0);
        record.set(data.subarray(start, end), prefix.length);
        record[record.length - 1] = 0x7d; // }
        this.turn.outputs.push(record);
      },
      noOutput: () => {},
      error: (batch, i, model, error) => {
        this.turn.errors.push(Buffer.from(`${head(batch, i)},"partition":${batch.partition},"model":${JSON.stringify(model)},"line":${JSON.stringify(batch.text(i).toString('utf8'))},"error":${errorJson(error)}}`));
      },
    };
  }

  /** Add the records of a completed range; its messages count as done. */
  add(range: BatchRange): void {
    visitOutcomes(range.batch, range.from, range.to, this.visitor);
    for (let i = range.from; i < range.to; i++) this.turn.done.push(range.batch.offsets[i]!);
  }

  /** Records and messages gathered since the last take. */
  get size(): number {
    return this.turn.outputs.length + this.turn.errors.length + this.turn.done.length;
  }

  /** The records gathered since the last take. */
  take(): TurnRecords {
    const turn = this.turn;
    this.turn = { outputs: [], errors: [], done: [] };
    return turn;
  }
}

function errorJson(e: ErrorRecord): string {
  return JSON.stringify({ code: e.code, type: e.type ?? null, message: e.message });
}
