/** The stdin line splitter: any chunking, CRLF, a last line without newline, invalid UTF-8 flagged, BOM skipped. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readLines } from '../src/cli/line-reader.js';

interface Line { text: string; badUtf8: boolean }

async function linesOf(chunks: Buffer[], stopAfterFirstChunk = false): Promise<Line[]> {
  const out: Line[] = [];
  let seen = 0;
  async function* source() {
    for (const c of chunks) { seen++; yield c; }
  }
  for await (const batch of readLines(source(), () => stopAfterFirstChunk && seen >= 1)) {
    batch.starts.forEach((s, k) => out.push({ text: batch.buf.toString('utf8', s, batch.ends[k]), badUtf8: batch.badUtf8?.[k] ?? false }));
  }
  return out;
}

test('lines split at every byte boundary come out whole', async () => {
  const text = Buffer.from('{"a":1}\r\n\n{"b":"é"}\nlast');
  const expected = [
    { text: '{"a":1}', badUtf8: false }, { text: '', badUtf8: false },
    { text: '{"b":"é"}', badUtf8: false }, { text: 'last', badUtf8: false },
  ];
  for (let size = 1; size <= text.length; size++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.subarray(i, i + size));
    assert.deepEqual(await linesOf(chunks), expected, `chunk size ${size}`);
  }
});

test('invalid UTF-8 is flagged, a literal U+FFFD is not', async () => {
  const lines = await linesOf([Buffer.from([0x61, 0xff, 0x0a]), Buffer.from('"\uFFFD"\n')]);
  assert.deepEqual(lines.map((l) => l.badUtf8), [true, false]);
});

test('stopping ends after the lines already received', async () => {
  const lines = await linesOf([Buffer.from('1\n2\n3'), Buffer.from('\n4\n')], true);
  assert.deepEqual(lines.map((l) => l.text), ['1', '2']);
});

test('a UTF-8 byte order mark at the start is skipped, not a bad line', async () => {
  const lines = await linesOf([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\n')]);
  assert.deepEqual(lines, [{ text: '{"a":1}', badUtf8: false }]);
  const whole = await linesOf([Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\n')])]);
  assert.deepEqual(whole, [{ text: '{"a":1}', badUtf8: false }]);
});

test('a byte order mark split across reads is skipped too; input shorter than one is a line', async () => {
  const split = await linesOf([Buffer.from([0xef]), Buffer.from([0xbb]), Buffer.from([0xbf, 0x7b, 0x7d]), Buffer.from('\n{"b":2}\n')]);
  assert.deepEqual(split, [{ text: '{}', badUtf8: false }, { text: '{"b":2}', badUtf8: false }]);
  const short = await linesOf([Buffer.from([0xef, 0xbb])]);
  assert.deepEqual(short.map((l) => l.badUtf8), [true]);
  const notBom = await linesOf([Buffer.from([0xef]), Buffer.from('x\n')]);
  assert.deepEqual(notBom.map((l) => l.badUtf8), [true]);
});

/** Bytes Buffer.concat wrote while `run` ran: the reader's copying work, counted, not timed. */
async function bytesCopied(run: () => Promise<void>): Promise<number> {
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const out = concat(list, total);
    copied += out.length;
    return out;
  }) as typeof Buffer.concat;
  try {
    await run();
  } finally {
    Buffer.concat = concat;
  }
  return copied;
}

/** Chunks of 64 KiB, as stdin delivers them. */
function* chunksOf(data: Buffer): Generator<Buffer> {
  for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
}

test('a 50 MB line costs about what the same bytes cost as 5,000 lines: its chunks are gathered once', async () => {
  const size = 50 * 1024 * 1024;
  const one = Buffer.alloc(size + 1, 0x61);
  one[size] = 10;
  // The same bytes as 5,000 lines: every 10,486th byte a newline, the last one too.
  const many = Buffer.alloc(size + 1, 0x61);
  for (let k = 1; k <= 5000; k++) many[Math.floor((k * (size + 1)) / 5000) - 1] = 10;
  const lengths: number[][] = [[], []];
  // One after the other: each count wraps Buffer.concat alone.
  const work: number[] = [];
  for (const [d, data] of [one, many].entries()) {
    work.push(await bytesCopied(async () => {
      async function* source() { yield* chunksOf(data); }
      for await (const batch of readLines(source())) batch.starts.forEach((s, k) => lengths[d]!.push(batch.ends[k]! - s));
    }));
  }
  assert.deepEqual(lengths[0], [size]);
  assert.equal(lengths[1]!.length, 5000);
  assert.equal(lengths[1]!.reduce((a, b) => a + b, 0) + 5000, size + 1, 'every byte but the newlines is in a line');
  const [long, short] = work as [number, number];
  assert.ok(long <= 2 * Math.max(short, size), `one long line copied ${long} bytes, the same bytes as lines ${short}`);
});

test('a line over maxLineBytes keeps its first 1 KiB and its length, and the lines after it come whole', async () => {
  const long = Buffer.alloc(3 * 1024 * 1024, 0x62);
  for (const split of [false, true]) {
    const data = Buffer.concat([Buffer.from('{"a":1}\n'), long, Buffer.from('\n{"b":2}\n'), long]);
    async function* source() { yield* split ? chunksOf(data) : [data]; }
    const seen: [string, number | undefined][] = [];
    for await (const batch of readLines(source(), () => false, 1024 * 1024)) {
      batch.starts.forEach((s, k) => seen.push([batch.buf.toString('latin1', s, batch.ends[k]).slice(0, 8) + `:${batch.ends[k]! - s}`, batch.overLimit?.get(k)]));
    }
    assert.deepEqual(seen, [['{"a":1}:7', undefined], ['bbbbbbbb:1024', long.length], ['{"b":2}:7', undefined], ['bbbbbbbb:1024', long.length]], `split into chunks: ${split}`);
  }
});
