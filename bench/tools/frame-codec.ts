/**
 * Throughput of the frame codec in one thread: `node dist/bench/tools/frame-codec.js [frames]`.
 * Decode: frames pre-encoded into one buffer, fed as 64 KiB chunk views (like socket reads).
 * Encode: encodeFrame on fresh JSON strings of the same payloads.
 */
import { FrameDecoder, encodeFrame, encodeFrames } from '../../src/protocol/index.js';
import { median } from '../measurement.js';

const CHUNK = 64 * 1024;
const RUNS = 5;

function payloadText(i: number): string {
  // ~60 bytes, shaped like a small executeModel reply.
  return `{"Cmd":"executeModel","Id":${1_000_000 + i},"Code":0,"Result":{"s":${i % 997}}}`;
}

function benchDecode(label: string, stream: Buffer, frames: number, payloadBytes: number): void {
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += CHUNK) chunks.push(stream.subarray(i, i + CHUNK));
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let seen = 0;
    let bytes = 0;
    const decoder = new FrameDecoder({
      onFrame(payload) {
        seen++;
        bytes += payload.length;
      },
      onError(kind) {
        throw new Error(`unexpected ${kind}`);
      },
    });
    const t0 = process.hrtime.bigint();
    for (const c of chunks) decoder.push(c);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (seen !== frames || bytes !== payloadBytes) throw new Error(`decoded ${seen} frames / ${bytes} bytes`);
    rates.push(frames / seconds);
  }
  const rate = median(rates);
  console.log(
    `decode ${label}: ${(rate / 1e6).toFixed(2)} M frames/s, ${((rate * stream.length) / frames / 2 ** 20).toFixed(0)} MiB/s ` +
      `(median of ${RUNS}, best ${(Math.max(...rates) / 1e6).toFixed(2)} M/s)`,
  );
}

function benchEncode(label: string, make: (i: number) => Buffer | string, count: number, stream: number): void {
  const inputs = Array.from({ length: count }, (_, i) => make(i));
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let total = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) total += encodeFrame(inputs[i]!).length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (total !== stream) throw new Error('encoded size mismatch');
    rates.push(count / seconds);
  }
  const rate = median(rates);
  console.log(
    `encode ${label}: ${(rate / 1e6).toFixed(2)} M frames/s, ${((rate * stream) / count / 2 ** 20).toFixed(0)} MiB/s (median of ${RUNS})`,
  );
}

const frames = Number(process.argv[2] ?? 1_000_000);
const texts = Array.from({ length: frames }, (_, i) => payloadText(i));
const small = Buffer.concat(texts.map((t) => encodeFrame(t)));
const smallPayloadBytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
console.log(`node ${process.version}; ${frames} frames, avg payload ${(smallPayloadBytes / frames).toFixed(1)} bytes, ${CHUNK / 1024} KiB chunks`);
benchDecode('small', small, frames, smallPayloadBytes);
benchEncode('small (string)', (i) => texts[i]!, frames, small.length);
benchEncode('small (Buffer)', (i) => Buffer.from(texts[i]!), frames, small.length);
{
  const BATCH = 100;
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let total = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < frames; i += BATCH) total += encodeFrames(texts.slice(i, i + BATCH)).length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (total !== small.length) throw new Error('encoded size mismatch');
    rates.push(frames / seconds);
  }
  console.log(`encode small, encodeFrames x${BATCH}: ${(median(rates) / 1e6).toFixed(2)} M frames/s (median of ${RUNS})`);
}

for (const size of [4 * 1024, 1024 * 1024]) {
  const count = Math.max(20, Math.floor((256 * 2 ** 20) / size));
  const payload = Buffer.alloc(size, 0x61);
  const stream = Buffer.concat(Array.from({ length: count }, () => encodeFrame(payload)));
  benchDecode(`${size / 1024} KiB`, stream, count, count * size);
  benchEncode(`${size / 1024} KiB`, () => payload, count, stream.length);
}
