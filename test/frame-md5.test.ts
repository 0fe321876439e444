/** The frame checksum's MD5 (node:crypto over a sub-range): RFC 1321 digests, any range and offset. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { md5Into, md5Matches } from '../src/protocol/index.js';

const nativeMd5 = (data: Uint8Array): Buffer => createHash('md5').update(data).digest();

test('known digests (RFC 1321 test suite)', () => {
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  const out = Buffer.alloc(16);
  for (const [text, hex] of suite) {
    const data = Buffer.from(text, 'latin1');
    md5Into(data, 0, data.length, out, 0);
    assert.equal(out.toString('hex'), hex, text);
  }
});

test('every length from 0 to 2100 bytes, at an odd offset, matches node:crypto', () => {
  const data = Buffer.from(Array.from({ length: 2105 }, (_, i) => (i * 167 + 13) & 0xff));
  const out = Buffer.alloc(20);
  for (let n = 0; n <= 2100; n++) {
    md5Into(data, 3, 3 + n, out, 2);
    assert.deepEqual(out.subarray(2, 18), nativeMd5(data.subarray(3, 3 + n)), `length ${n}`);
  }
});

test('property: md5Into and md5Matches agree with node:crypto on arbitrary bytes and ranges', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const data = Buffer.from(bytes);
      const start = data.length === 0 ? 0 : a % (data.length + 1);
      const end = start + (data.length - start === 0 ? 0 : b % (data.length - start + 1));
      const expected = nativeMd5(data.subarray(start, end));
      const out = Buffer.alloc(16);
      md5Into(data, start, end, out, 0);
      assert.deepEqual(out, expected);
      assert.ok(md5Matches(data, start, end, expected, 0));
      const wrong = Buffer.from(expected);
      wrong[15]! ^= 1;
      assert.ok(!md5Matches(data, start, end, wrong, 0));
    }),
    { numRuns: 300 },
  );
});
