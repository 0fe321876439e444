/**
 * The fixed text of an output or error record, shared by every place that writes records as
 * bytes (the CLI's lines, the Redis sink's entries), so the two can never drift apart:
 *   output: `{"offset":N,"key":K` + `,"partition":P,"model":M,"output":` + OUTPUT + `}`
 *   error:  `{"offset":N,"key":K` + `,"partition":P,"model":M,"line":…,"error":{code,type,message,traceback}}`
 * The key and the output are copied by the writer as the bytes they arrived as.
 */
import type { Batch } from '../engine/batch.js';
import type { ErrorRecord } from '../api/errors.js';

/** `{"offset":` */
export const OFFSET_FIELD = Buffer.from('{"offset":');
/** `,"key":` */
export const KEY_FIELD = Buffer.from(',"key":');
/** A keyless message's key. */
export const NULL = Buffer.from('null');
/** The end of an output record. */
export const CLOSE = Buffer.from('}');

/** `,"partition":P,"model":M,"output":` for each partition and model, encoded once. */
export class OutputTails {
  private readonly tails = new Map<string, Buffer>();
  private last: { partition: number | null; model: string; bytes: Buffer } = { partition: -1, model: '', bytes: CLOSE };

  /** The bytes between a record's key and its output. */
  of(partition: number | null, model: string): Buffer {
    const last = this.last;
    if (partition === last.partition && model === last.model) return last.bytes;
    const id = `${partition}\u0000${model}`;
    let bytes = this.tails.get(id);
    if (bytes === undefined) this.tails.set(id, bytes = Buffer.from(`,"partition":${partition},"model":${JSON.stringify(model)},"output":`));
    this.last = { partition, model, bytes };
    return bytes;
  }
}

/** Everything of an error record after its key, the closing brace included. */
export function errorTail(batch: Batch, i: number, model: string | null, error: ErrorRecord): string {
  return `,"partition":${batch.partition},"model":${JSON.stringify(model)},"line":${JSON.stringify(batch.text(i).toString('utf8'))},"error":${errorJson(error)}}`;
}

/** An error record's `error`: the Python traceback too, when the model raised (file and line of every frame). */
function errorJson(e: ErrorRecord): string {
  return JSON.stringify({ code: e.code, type: e.type ?? null, message: e.message, traceback: e.traceback ?? null });
}
