/**
 * Property tests of the frame decoder. The oracle for damaged streams is the naive whole-buffer
 * reference decoder in support/ (independent code, node:crypto MD5), fed the same bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeFrame } from '../src/protocol/index.js';
import { byteChunks, recordingDecoder, splitAt, type Recorder } from './support/frame-events.js';
import { referenceDecode } from './support/reference-decoder.js';

const MAX = 256;
const K = 0x4b;

function feed(r: Recorder, chunks: Buffer[]): void {
  for (const c of chunks) r.decoder.push(c);
}

const payloadArb = fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a));
const cutsArb = fc.array(fc.nat(), { maxLength: 40 });
// Split points, or (sometimes) the worst case of one byte per chunk.
interface Chunking {
  cuts: number[];
  bytes: boolean;
}
const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 4, arbitrary: cutsArb.map((cuts) => ({ cuts, bytes: false })) },
  fc.constant<Chunking>({ cuts: [], bytes: true }),
);
const chunk = (data: Buffer, how: Chunking): Buffer[] =>
  how.bytes ? byteChunks(data) : splitAt(data, how.cuts);

/** Decode `stream` cut as `how` says; assert the events, skipped count and pending bytes are the reference decoder's. */
function decodeLikeReference(stream: Buffer, how: Chunking): Recorder {
  const r = recordingDecoder(MAX, 'hex');
  feed(r, chunk(stream, how));
  const expected = referenceDecode(stream, MAX);
  assert.deepEqual(r.events, expected.events);
  assert.equal(r.skipped, expected.skipped);
  assert.equal(r.decoder.bufferedBytes, expected.pending);
  return r;
}

// Garbage biased towards marker letters, so partial and false BEGINs are common.
const garbageArb = fc
  .array(fc.oneof(fc.constantFrom(K, 0x50, 0x59, 0x53, 0x45, 0x01, 0x00), fc.integer({ min: 0, max: 255 })), { maxLength: 60 })
  .map((a) => Buffer.from(a));

const noKArb = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((a) => Buffer.from(a.map((b) => (b === K ? 0x4a : b))));

/** A piece of a hostile stream: good, garbage, mutated, bad-version, truncated, duplicated frames and bogus headers. */
const pieceArb: fc.Arbitrary<Buffer> = fc.oneof(
  payloadArb.map((p) => encodeFrame(p)),
  payloadArb.map((p) => encodeFrame(p, undefined, 'crc32')),
  garbageArb,
  fc.tuple(payloadArb, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([p, at, xor]) => {
    const f = Buffer.from(encodeFrame(p));
    f[at % f.length]! ^= xor;
    return f;
  }),
  fc.tuple(payloadArb, fc.integer({ min: 0, max: 255 }).filter((v) => v !== 1)).map(([p, version]) => {
    const f = Buffer.from(encodeFrame(p));
    f[4] = version;
    return f;
  }),
  fc.tuple(payloadArb, fc.nat()).map(([p, cut]) => {
    const f = encodeFrame(p);
    return f.subarray(0, cut % f.length);
  }),
  payloadArb.map((p) => {
    const f = encodeFrame(p);
    return Buffer.concat([f, f]);
  }),
  // A header whose LENGTH covers whatever follows: the missing-end resync must find frames inside it.
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 2 * MAX })).map(([sum, length]) => {
    const h = Buffer.alloc(25);
    h.write('KPYS', 0, 'latin1');
    h[4] = 1;
    h.set(sum, 5);
    h.writeUInt32BE(length, 21);
    return h;
  }),
);

test('property: encoded payloads, concatenated and split anywhere, decode to the same payloads', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(fc.array(payloadArb, { maxLength: 30 }), chunkingArb, (payloads, how) => {
      const stream = Buffer.concat(payloads.map((p) => encodeFrame(p, MAX)));
      const r = recordingDecoder(MAX, 'hex');
      feed(r, chunk(stream, how));
      assert.deepEqual(r.payloads, payloads);
      assert.deepEqual(r.events.map((e) => e.event), payloads.map(() => 'frame'));
      assert.equal(r.skipped, 0);
      assert.equal(r.decoder.bufferedBytes, 0);
    }),
    { numRuns: 300 },
  );
});

test('property: good frames separated by garbage without K are all decoded', { timeout: 30_000 }, () => {
  const gapArb = fc.integer({ min: 0, max: 80 }).chain(noKArb);
  fc.assert(
    fc.property(fc.array(fc.tuple(gapArb, payloadArb), { maxLength: 20 }), gapArb, chunkingArb, (items, tail, how) => {
      const stream = Buffer.concat([...items.flatMap(([gap, p]) => [gap, encodeFrame(p)]), tail]);
      const r = recordingDecoder(MAX, 'hex');
      feed(r, chunk(stream, how));
      assert.deepEqual(r.payloads, items.map(([, p]) => p));
      assert.ok(r.events.every((e) => e.event === 'frame'));
      assert.equal(r.skipped, items.reduce((n, [gap]) => n + gap.length, tail.length));
    }),
    { numRuns: 300 },
  );
});

/*
 * What is guaranteed after arbitrary damage: a candidate BEGIN is resolved within
 * 4 + 25 + MAX + 4 bytes of where it starts, and a candidate needs a K. So once a run of at
 * least MAX + 25 bytes without K has followed the damage, every candidate that started in the
 * damage has been resolved before the run ends, and a good frame after the run is decoded, as
 * the very last event, with nothing left pending. Frames inside the damage carry no such
 * promise (a bogus LENGTH ending on a real END swallows them as bad-checksum), so for those
 * the decoder must simply agree with the reference decoder, under every chunking.
 */
test('property: hostile streams never throw, match the reference decoder, and recover after a K-free separator', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(
      fc.array(pieceArb, { maxLength: 40, size: 'medium' }),
      noKArb(MAX + 25),
      payloadArb,
      chunkingArb,
      (pieces, separator, last, how) => {
        const r = decodeLikeReference(Buffer.concat([...pieces, separator, encodeFrame(last)]), how);
        assert.deepEqual(r.events.at(-1), { event: 'frame', payload: last.toString('hex') });
        assert.equal(r.decoder.bufferedBytes, 0);
      },
    ),
    { numRuns: 400 },
  );
});

test('property: on any prefix of a hostile stream the decoder agrees with the reference, pending bytes included', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(fc.array(pieceArb, { maxLength: 40, size: 'medium' }), chunkingArb, (pieces, how) => {
      decodeLikeReference(Buffer.concat(pieces), how);
    }),
    { numRuns: 400 },
  );
});
