/**
 * The one place output and error records are written as bytes, for every writer of them (the CLI's
 * lines, the Redis sink's entries, the Redis runner's records of entries that never reached a batch),
 * so they can never drift apart:
 *   output: `{"offset":N,"key":K,"partition":P,"model":M,"output":` + OUTPUT + `}`
 *   error:  `{"offset":N,"key":K,"partition":P,"model":M,"input":…,"error":{code,type,message,traceback}}`
 * A Redis record has `"id":ID,` first. The key and the output are copied as the bytes they arrived as;
 * `input` is the message as it came in (the input line, the entry's data), the API record's `input` too.
 */
import { SPAN_WIDTH, type Batch } from '../engine/batch.js';
import type { ErrorRecord } from '../api/errors.js';

/** Where a record's bytes go: the CLI's LineWriter, or a RecordBytes gathering one record (src/records/byte-builder.ts). */
export interface ByteSink {
  bytes(src: Uint8Array, start?: number, end?: number): unknown;
  decimal(n: number): unknown;
  text(text: string): unknown;
}

const OFFSET_FIELD = Buffer.from('{"offset":');
const KEY_FIELD = Buffer.from(',"key":');
const NULL = Buffer.from('null');
const CLOSE = Buffer.from('}');

/** Writes records of completed messages; holds the encoded `,"partition":P,"model":M,"output":` of each pair. */
export class RecordWriter {
  private readonly tails = new Map<string, Buffer>();
  private last: { partition: number | null; model: string; bytes: Buffer } = { partition: -1, model: '', bytes: CLOSE };

  /** Message i's output data[start, end) as a record (`id`: the Redis entry it came from). */
  output(sink: ByteSink, batch: Batch, i: number, model: string, data: Uint8Array, start: number, end: number, id: string | null = null): void {
    this.head(sink, batch, i, id);
    sink.bytes(this.tail(batch.partition, model));
    sink.bytes(data, start, end);
    sink.bytes(CLOSE);
  }

  /** Message i's failure as a record, holding the message as it came in. */
  error(sink: ByteSink, batch: Batch, i: number, model: string | null, error: ErrorRecord, id: string | null = null): void {
    this.head(sink, batch, i, id);
    sink.text(errorFields(batch.partition, model, batch.text(i).toString('utf8'), error));
  }

  private head(sink: ByteSink, batch: Batch, i: number, id: string | null): void {
    if (id === null) sink.bytes(OFFSET_FIELD);
    else sink.text(`{"id":${JSON.stringify(id)},"offset":`);
    sink.decimal(batch.offsets[i]!);
    sink.bytes(KEY_FIELD);
    const s = batch.spans[i * SPAN_WIDTH + 2]!;
    if (s < 0) sink.bytes(NULL);
    else sink.bytes(batch.buf, s, batch.spans[i * SPAN_WIDTH + 3]!);
  }

  /** The bytes between a record's key and its output, encoded once per partition and model. */
  private tail(partition: number | null, model: string): Buffer {
    const last = this.last;
    if (partition === last.partition && model === last.model) return last.bytes;
    const id = `${partition}\u0000${model}`;
    let bytes = this.tails.get(id);
    if (bytes === undefined) this.tails.set(id, bytes = Buffer.from(`,"partition":${partition},"model":${JSON.stringify(model)},"output":`));
    this.last = { partition, model, bytes };
    return bytes;
  }
}

/** The error record of a Redis entry that never reached a batch (given up before): no offset, key, partition or model. */
export function entryErrorRecord(id: string, input: string, error: ErrorRecord): Buffer {
  return Buffer.from(`{"id":${JSON.stringify(id)},"offset":null,"key":null${errorFields(null, null, input, error)}`);
}

/** Everything of an error record after its key, the closing brace included. */
function errorFields(partition: number | null, model: string | null, input: string, e: ErrorRecord): string {
  // The Python traceback too, when the model raised (file and line of every frame).
  const error = JSON.stringify({ code: e.code, type: e.type ?? null, message: e.message, traceback: e.traceback ?? null });
  return `,"partition":${partition},"model":${JSON.stringify(model)},"input":${JSON.stringify(input)},"error":${error}}`;
}
