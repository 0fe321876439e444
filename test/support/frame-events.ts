/** Test helper: a FrameDecoder whose callbacks record events in the shared vectors' format. */
import { FrameDecoder, type FrameErrorKind } from '../../src/protocol/index.js';

/** One decoder event; payloads as UTF-8 text (vectors) or hex (fuzz), chosen by the recorder. */
export type RecordedEvent =
  | { event: 'frame'; payload: string }
  | { event: 'error'; kind: FrameErrorKind; payload?: string };

/** A decoder plus everything it reported. */
export interface Recorder {
  decoder: FrameDecoder;
  events: RecordedEvent[];
  /** Payload bytes of frame and bad-checksum events, in order. */
  payloads: Buffer[];
  skipped: number;
}

/** Build a decoder that records events; payload text is `encoding` of the payload bytes. */
export function recordingDecoder(maxFrameBytes: number, encoding: 'utf8' | 'hex' = 'utf8'): Recorder {
  const recorder: Recorder = { decoder: undefined as unknown as FrameDecoder, events: [], payloads: [], skipped: 0 };
  recorder.decoder = new FrameDecoder({
    maxFrameBytes,
    onFrame(payload) {
      recorder.payloads.push(payload);
      recorder.events.push({ event: 'frame', payload: payload.toString(encoding) });
    },
    onError(kind, payload) {
      if (payload === null) {
        recorder.events.push({ event: 'error', kind });
      } else {
        recorder.payloads.push(payload);
        recorder.events.push({ event: 'error', kind, payload: payload.toString(encoding) });
      }
    },
    onSkipped(count) {
      if (!(count > 0)) throw new Error(`onSkipped(${count}): counts must be positive`);
      recorder.skipped += count;
    },
  });
  return recorder;
}

/** Cut `data` at the given positions (any order, any values; taken modulo the length). */
export function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  if (data.length === 0) return [];
  const points = [...new Set(cuts.map((c) => c % data.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const to of points) {
    chunks.push(data.subarray(from, to));
    from = to;
  }
  chunks.push(data.subarray(from));
  return chunks;
}

/** Cut `data` into chunks of 1..maxChunk bytes using a seeded generator. */
export function randomChunks(data: Buffer, next: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let from = 0; from < data.length; ) {
    const size = 1 + Math.floor(next() * maxChunk);
    chunks.push(data.subarray(from, from + size));
    from += size;
  }
  return chunks;
}

/** Cut `data` into 1-byte chunks. Copies, so no chunk is a view of a neighbour's memory. */
export function byteChunks(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (const byte of data) chunks.push(Buffer.from([byte]));
  return chunks;
}
