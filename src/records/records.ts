/**
 * The API's view of completed messages: one record per output and per error. An output keeps
 * the exact JSON text the model's server produced (`json`); `output` parses it on first use,
 * so integers beyond 2^53 can still be read exactly from `json` with a parser of your choice.
 */
import { visitOutcomes, type Batch, type OutcomeVisitor } from '../engine/batch.js';
import type { ErrorRecord } from '../api/errors.js';
import type { BatchRange } from '../engine/ordered-merge.js';

/** One output of one model for one message. */
export class StageOutput {
  readonly kind = 'output' as const;
  #parsed: Record<string, unknown> | undefined;

  constructor(
    readonly offset: number,
    readonly key: unknown,
    readonly partition: number,
    readonly model: string,
    /** The output exactly as the model's server encoded it. */
    readonly json: string,
  ) {}

  /** The output, parsed (JSON.parse: numbers beyond 2^53 lose digits; read `json` for those). */
  get output(): Record<string, unknown> {
    return (this.#parsed ??= JSON.parse(this.json) as Record<string, unknown>);
  }

  toJSON(): object {
    return { kind: this.kind, offset: this.offset, key: this.key, partition: this.partition, model: this.model, output: this.output };
  }
}

/** A message (or one model's part of it) that produced an error instead of an output. */
export interface StageFailure {
  kind: 'error';
  offset: number;
  key: unknown;
  partition: number | null;
  model: string | null;
  /** The message as JSON text, or the raw input line. */
  input: string;
  error: ErrorRecord;
}

/** What `process` yields. Messages whose model returned None yield nothing (they are counted). */
export type StageRecord = StageOutput | StageFailure;

/** The records of a range of a completed batch, in message order. */
export function toRecords(range: BatchRange): StageRecord[] {
  const records: StageRecord[] = [];
  // process() keeps each message's key as given; lines (stream() fed bytes) have only its JSON text.
  const keyOf = (batch: Batch, i: number): unknown => {
    if (batch.keys !== null) return batch.keys[i] ?? null;
    const text = batch.keyText(i);
    return text === null ? null : JSON.parse(text.toString('utf8'));
  };
  const visitor: OutcomeVisitor = {
    output(batch: Batch, i: number, model: string, data: Uint8Array, start: number, end: number) {
      const json = Buffer.from(data.buffer, data.byteOffset + start, end - start).toString('utf8');
      records.push(new StageOutput(batch.offsets[i]!, keyOf(batch, i), batch.partition!, model, json));
    },
    noOutput() {},
    error(batch: Batch, i: number, model: string | null, error: ErrorRecord) {
      records.push({
        kind: 'error', offset: batch.offsets[i]!, key: keyOf(batch, i), partition: batch.partition,
        model, input: batch.text(i).toString('utf8'), error,
      });
    },
  };
  visitOutcomes(range.batch, range.from, range.to, visitor);
  return records;
}
