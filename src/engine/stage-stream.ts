/**
 * `stage.stream()`: the Duplex for `stream.pipeline()`. What is written decides, by its first chunk:
 * objects are messages (as `process()` takes them); bytes (Buffers or strings) are JSON lines, split and
 * scanned for the key as the CLI reads stdin, never parsed, so
 * `pipeline(fs.createReadStream('in.jsonl'), stage.stream(), out)` runs every line. Either way the
 * readable side yields StageRecords, offsets counting messages (lines) from 0.
 */
import { Duplex, PassThrough, Readable } from 'node:stream';
import { BadInputError } from '../api/errors.js';
import { readLines, type LineBatch } from '../cli/line-reader.js';
import { toRecords, type StageRecord } from '../records/records.js';
import type { BatchRange } from './ordered-merge.js';

/** The two ways into the engine a stream uses. */
export interface StreamEngine {
  process(source: AsyncIterable<unknown>): AsyncGenerator<StageRecord>;
  processLines(source: AsyncIterable<LineBatch>): AsyncIterable<BatchRange[]>;
}

/** A Duplex writing messages or JSON-lines bytes into `engine`, reading its records. */
export function stageStream(engine: StreamEngine): Duplex {
  const input = new PassThrough({ objectMode: true });
  return Duplex.from({ writable: input, readable: Readable.from(records(engine, input)) });
}

const isBytes = (chunk: unknown): boolean => typeof chunk === 'string' || ArrayBuffer.isView(chunk);

async function* records(engine: StreamEngine, input: AsyncIterable<unknown>): AsyncGenerator<StageRecord> {
  const chunks = input[Symbol.asyncIterator]();
  const first = await chunks.next();
  if (first.done) return;
  const all = (async function* () {
    yield first.value;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  })();
  if (!isBytes(first.value)) {
    yield* engine.process(all);
    return;
  }
  for await (const ranges of engine.processLines(readLines(asBytes(all)))) {
    for (const range of ranges) yield* toRecords(range);
  }
}

/** The chunks of a stream begun with bytes, as Buffers; an object among them cannot be a line. */
async function* asBytes(chunks: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else if (ArrayBuffer.isView(chunk)) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new BadInputError('stage.stream() was given bytes (JSON lines) first and then an object: write one or the other');
  }
}
