/**
 * Tests of the hot path's byte copies (src/records/bytes.ts). Expected values come from node itself:
 * `String(n)` for decimals, `Buffer#subarray` for copies, at every length around the switch
 * from the byte loop to TypedArray#set.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyBytes, writeDecimal } from '../src/records/bytes.js';

test('writeDecimal writes what String(n) writes, around every power of ten up to 2^53 - 1', () => {
  const samples = [0, 1, 9, Number.MAX_SAFE_INTEGER];
  for (let p = 10; p <= Number.MAX_SAFE_INTEGER; p *= 10) samples.push(p - 1, p, p + 1);
  const dst = Buffer.alloc(40, 0x2e);
  for (const n of samples) {
    dst.fill(0x2e);
    const end = writeDecimal(dst, 3, n);
    assert.equal(dst.toString('latin1', 3, end), String(n));
    assert.equal(dst[2], 0x2e, `nothing written before position 3 for ${n}`);
    assert.equal(dst[end], 0x2e, `nothing written after the digits of ${n}`);
  }
});

test('copyBytes copies exactly [start, end) to the given position, for short and long spans', () => {
  const src = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff));
  for (const n of [0, 1, 2, 31, 46, 47, 48, 49, 64, 200]) {
    const dst = Buffer.alloc(320, 0xee);
    const end = copyBytes(dst, 5, src, 11, 11 + n);
    assert.equal(end, 5 + n);
    assert.deepEqual(dst.subarray(5, end), src.subarray(11, 11 + n), `span of ${n} bytes`);
    assert.ok(dst.subarray(0, 5).every((b) => b === 0xee) && dst.subarray(end).every((b) => b === 0xee), `only ${n} bytes written`);
  }
});
