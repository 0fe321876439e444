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
