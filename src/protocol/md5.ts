/**
 * MD5 for frame checksums, tuned for the small payloads that dominate the protocol.
 *
 * Why not only node:crypto: on Node 20 with OpenSSL 3 every one-shot hash call costs
 * about 1.5 µs of fixed overhead, which alone caps a decoder at ~650k frames/s. This
 * pure-JS version hashes a 64-byte payload in a fraction of that and never allocates;
 * above NATIVE_MD5_THRESHOLD bytes the native hash is faster and is used instead.
 * MD5 here is an integrity check against corruption, not a security measure.
 */
import crypto from 'node:crypto';

/** Payloads at least this long are hashed with node:crypto (measured crossover, rounded down). */
export const NATIVE_MD5_THRESHOLD = 1024;

// Module-level scratch: JS is single-threaded and each worker thread has its own module instance.
const tail = new Uint8Array(128);
const state = new Int32Array(4);
const scratchDigest = new Uint8Array(16);

type NativeHash = (data: Uint8Array) => Uint8Array;
const nativeMd5: NativeHash =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('md5', data, 'buffer')
    // crypto.hash arrived in Node 20.12; older 20.x gets the slower object API.
    : (data) => crypto.createHash('md5').update(data).digest();

function block(s: Int32Array, m: Uint8Array, o: number): void {
  const x0 = m[o] | (m[o + 1] << 8) | (m[o + 2] << 16) | (m[o + 3] << 24);
  const x1 = m[o + 4] | (m[o + 5] << 8) | (m[o + 6] << 16) | (m[o + 7] << 24);
  const x2 = m[o + 8] | (m[o + 9] << 8) | (m[o + 10] << 16) | (m[o + 11] << 24);
  const x3 = m[o + 12] | (m[o + 13] << 8) | (m[o + 14] << 16) | (m[o + 15] << 24);
  const x4 = m[o + 16] | (m[o + 17] << 8) | (m[o + 18] << 16) | (m[o + 19] << 24);
  const x5 = m[o + 20] | (m[o + 21] << 8) | (m[o + 22] << 16) | (m[o + 23] << 24);
  const x6 = m[o + 24] | (m[o + 25] << 8) | (m[o + 26] << 16) | (m[o + 27] << 24);
  const x7 = m[o + 28] | (m[o + 29] << 8) | (m[o + 30] << 16) | (m[o + 31] << 24);
  const x8 = m[o + 32] | (m[o + 33] << 8) | (m[o + 34] << 16) | (m[o + 35] << 24);
  const x9 = m[o + 36] | (m[o + 37] << 8) | (m[o + 38] << 16) | (m[o + 39] << 24);
  const x10 = m[o + 40] | (m[o + 41] << 8) | (m[o + 42] << 16) | (m[o + 43] << 24);
  const x11 = m[o + 44] | (m[o + 45] << 8) | (m[o + 46] << 16) | (m[o + 47] << 24);
  const x12 = m[o + 48] | (m[o + 49] << 8) | (m[o + 50] << 16) | (m[o + 51] << 24);
  const x13 = m[o + 52] | (m[o + 53] << 8) | (m[o + 54] << 16) | (m[o + 55] << 24);
  const x14 = m[o + 56] | (m[o + 57] << 8) | (m[o + 58] << 16) | (m[o + 59] << 24);
  const x15 = m[o + 60] | (m[o + 61] << 8) | (m[o + 62] << 16) | (m[o + 63] << 24);
  let a = s[0];
  let b = s[1];
  let c = s[2];
  let d = s[3];
  let t: number;
  // RFC 1321 rounds, unrolled so every word and constant stays in a register.
  t = (a + ((b & c) | (~b & d)) + x0 + 0xd76aa478) | 0;
  a = (((t << 7) | (t >>> 25)) + b) | 0;
  t = (d + ((a & b) | (~a & c)) + x1 + 0xe8c7b756) | 0;
  d = (((t << 12) | (t >>> 20)) + a) | 0;
  t = (c + ((d & a) | (~d & b)) + x2 + 0x242070db) | 0;
  c = (((t << 17) | (t >>> 15)) + d) | 0;
  t = (b + ((c & d) | (~c & a)) + x3 + 0xc1bdceee) | 0;
  b = (((t << 22) | (t >>> 10)) + c) | 0;
  t = (a + ((b & c) | (~b & d)) + x4 + 0xf57c0faf) | 0;
  a = (((t << 7) | (t >>> 25)) + b) | 0;
  t = (d + ((a & b) | (~a & c)) + x5 + 0x4787c62a) | 0;
  d = (((t << 12) | (t >>> 20)) + a) | 0;
  t = (c + ((d & a) | (~d & b)) + x6 + 0xa8304613) | 0;
  c = (((t << 17) | (t >>> 15)) + d) | 0;
  t = (b + ((c & d) | (~c & a)) + x7 + 0xfd469501) | 0;
  b = (((t << 22) | (t >>> 10)) + c) | 0;
  t = (a + ((b & c) | (~b & d)) + x8 + 0x698098d8) | 0;
  a = (((t << 7) | (t >>> 25)) + b) | 0;
  t = (d + ((a & b) | (~a & c)) + x9 + 0x8b44f7af) | 0;
  d = (((t << 12) | (t >>> 20)) + a) | 0;
  t = (c + ((d & a) | (~d & b)) + x10 + 0xffff5bb1) | 0;
  c = (((t << 17) | (t >>> 15)) + d) | 0;
  t = (b + ((c & d) | (~c & a)) + x11 + 0x895cd7be) | 0;
  b = (((t << 22) | (t >>> 10)) + c) | 0;
  t = (a + ((b & c) | (~b & d)) + x12 + 0x6b901122) | 0;
  a = (((t << 7) | (t >>> 25)) + b) | 0;
  t = (d + ((a & b) | (~a & c)) + x13 + 0xfd987193) | 0;
  d = (((t << 12) | (t >>> 20)) + a) | 0;
  t = (c + ((d & a) | (~d & b)) + x14 + 0xa679438e) | 0;
  c = (((t << 17) | (t >>> 15)) + d) | 0;
  t = (b + ((c & d) | (~c & a)) + x15 + 0x49b40821) | 0;
  b = (((t << 22) | (t >>> 10)) + c) | 0;
  t = (a + ((b & d) | (c & ~d)) + x1 + 0xf61e2562) | 0;
  a = (((t << 5) | (t >>> 27)) + b) | 0;
  t = (d + ((a & c) | (b & ~c)) + x6 + 0xc040b340) | 0;
  d = (((t << 9) | (t >>> 23)) + a) | 0;
  t = (c + ((d & b) | (a & ~b)) + x11 + 0x265e5a51) | 0;
  c = (((t << 14) | (t >>> 18)) + d) | 0;
  t = (b + ((c & a) | (d & ~a)) + x0 + 0xe9b6c7aa) | 0;
  b = (((t << 20) | (t >>> 12)) + c) | 0;
  t = (a + ((b & d) | (c & ~d)) + x5 + 0xd62f105d) | 0;
  a = (((t << 5) | (t >>> 27)) + b) | 0;
  t = (d + ((a & c) | (b & ~c)) + x10 + 0x02441453) | 0;
  d = (((t << 9) | (t >>> 23)) + a) | 0;
  t = (c + ((d & b) | (a & ~b)) + x15 + 0xd8a1e681) | 0;
  c = (((t << 14) | (t >>> 18)) + d) | 0;
  t = (b + ((c & a) | (d & ~a)) + x4 + 0xe7d3fbc8) | 0;
  b = (((t << 20) | (t >>> 12)) + c) | 0;
  t = (a + ((b & d) | (c & ~d)) + x9 + 0x21e1cde6) | 0;
  a = (((t << 5) | (t >>> 27)) + b) | 0;
  t = (d + ((a & c) | (b & ~c)) + x14 + 0xc33707d6) | 0;
  d = (((t << 9) | (t >>> 23)) + a) | 0;
  t = (c + ((d & b) | (a & ~b)) + x3 + 0xf4d50d87) | 0;
  c = (((t << 14) | (t >>> 18)) + d) | 0;
  t = (b + ((c & a) | (d & ~a)) + x8 + 0x455a14ed) | 0;
  b = (((t << 20) | (t >>> 12)) + c) | 0;
  t = (a + ((b & d) | (c & ~d)) + x13 + 0xa9e3e905) | 0;
  a = (((t << 5) | (t >>> 27)) + b) | 0;
  t = (d + ((a & c) | (b & ~c)) + x2 + 0xfcefa3f8) | 0;
  d = (((t << 9) | (t >>> 23)) + a) | 0;
  t = (c + ((d & b) | (a & ~b)) + x7 + 0x676f02d9) | 0;
  c = (((t << 14) | (t >>> 18)) + d) | 0;
  t = (b + ((c & a) | (d & ~a)) + x12 + 0x8d2a4c8a) | 0;
  b = (((t << 20) | (t >>> 12)) + c) | 0;
  t = (a + (b ^ c ^ d) + x5 + 0xfffa3942) | 0;
  a = (((t << 4) | (t >>> 28)) + b) | 0;
  t = (d + (a ^ b ^ c) + x8 + 0x8771f681) | 0;
  d = (((t << 11) | (t >>> 21)) + a) | 0;
  t = (c + (d ^ a ^ b) + x11 + 0x6d9d6122) | 0;
  c = (((t << 16) | (t >>> 16)) + d) | 0;
  t = (b + (c ^ d ^ a) + x14 + 0xfde5380c) | 0;
  b = (((t << 23) | (t >>> 9)) + c) | 0;
  t = (a + (b ^ c ^ d) + x1 + 0xa4beea44) | 0;
  a = (((t << 4) | (t >>> 28)) + b) | 0;
  t = (d + (a ^ b ^ c) + x4 + 0x4bdecfa9) | 0;
  d = (((t << 11) | (t >>> 21)) + a) | 0;
  t = (c + (d ^ a ^ b) + x7 + 0xf6bb4b60) | 0;
  c = (((t << 16) | (t >>> 16)) + d) | 0;
  t = (b + (c ^ d ^ a) + x10 + 0xbebfbc70) | 0;
  b = (((t << 23) | (t >>> 9)) + c) | 0;
  t = (a + (b ^ c ^ d) + x13 + 0x289b7ec6) | 0;
  a = (((t << 4) | (t >>> 28)) + b) | 0;
  t = (d + (a ^ b ^ c) + x0 + 0xeaa127fa) | 0;
  d = (((t << 11) | (t >>> 21)) + a) | 0;
  t = (c + (d ^ a ^ b) + x3 + 0xd4ef3085) | 0;
  c = (((t << 16) | (t >>> 16)) + d) | 0;
  t = (b + (c ^ d ^ a) + x6 + 0x04881d05) | 0;
  b = (((t << 23) | (t >>> 9)) + c) | 0;
  t = (a + (b ^ c ^ d) + x9 + 0xd9d4d039) | 0;
  a = (((t << 4) | (t >>> 28)) + b) | 0;
  t = (d + (a ^ b ^ c) + x12 + 0xe6db99e5) | 0;
  d = (((t << 11) | (t >>> 21)) + a) | 0;
  t = (c + (d ^ a ^ b) + x15 + 0x1fa27cf8) | 0;
  c = (((t << 16) | (t >>> 16)) + d) | 0;
  t = (b + (c ^ d ^ a) + x2 + 0xc4ac5665) | 0;
  b = (((t << 23) | (t >>> 9)) + c) | 0;
  t = (a + (c ^ (b | ~d)) + x0 + 0xf4292244) | 0;
  a = (((t << 6) | (t >>> 26)) + b) | 0;
  t = (d + (b ^ (a | ~c)) + x7 + 0x432aff97) | 0;
  d = (((t << 10) | (t >>> 22)) + a) | 0;
  t = (c + (a ^ (d | ~b)) + x14 + 0xab9423a7) | 0;
  c = (((t << 15) | (t >>> 17)) + d) | 0;
  t = (b + (d ^ (c | ~a)) + x5 + 0xfc93a039) | 0;
  b = (((t << 21) | (t >>> 11)) + c) | 0;
  t = (a + (c ^ (b | ~d)) + x12 + 0x655b59c3) | 0;
  a = (((t << 6) | (t >>> 26)) + b) | 0;
  t = (d + (b ^ (a | ~c)) + x3 + 0x8f0ccc92) | 0;
  d = (((t << 10) | (t >>> 22)) + a) | 0;
  t = (c + (a ^ (d | ~b)) + x10 + 0xffeff47d) | 0;
  c = (((t << 15) | (t >>> 17)) + d) | 0;
  t = (b + (d ^ (c | ~a)) + x1 + 0x85845dd1) | 0;
  b = (((t << 21) | (t >>> 11)) + c) | 0;
  t = (a + (c ^ (b | ~d)) + x8 + 0x6fa87e4f) | 0;
  a = (((t << 6) | (t >>> 26)) + b) | 0;
  t = (d + (b ^ (a | ~c)) + x15 + 0xfe2ce6e0) | 0;
  d = (((t << 10) | (t >>> 22)) + a) | 0;
  t = (c + (a ^ (d | ~b)) + x6 + 0xa3014314) | 0;
  c = (((t << 15) | (t >>> 17)) + d) | 0;
  t = (b + (d ^ (c | ~a)) + x13 + 0x4e0811a1) | 0;
  b = (((t << 21) | (t >>> 11)) + c) | 0;
  t = (a + (c ^ (b | ~d)) + x4 + 0xf7537e82) | 0;
  a = (((t << 6) | (t >>> 26)) + b) | 0;
  t = (d + (b ^ (a | ~c)) + x11 + 0xbd3af235) | 0;
  d = (((t << 10) | (t >>> 22)) + a) | 0;
  t = (c + (a ^ (d | ~b)) + x2 + 0x2ad7d2bb) | 0;
  c = (((t << 15) | (t >>> 17)) + d) | 0;
  t = (b + (d ^ (c | ~a)) + x9 + 0xeb86d391) | 0;
  b = (((t << 21) | (t >>> 11)) + c) | 0;
  s[0] = (s[0] + a) | 0;
  s[1] = (s[1] + b) | 0;
  s[2] = (s[2] + c) | 0;
  s[3] = (s[3] + d) | 0;
}

function jsMd5(data: Uint8Array, start: number, end: number): void {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  const length = end - start;
  const fullEnd = start + (length - (length % 64));
  let o = start;
  for (; o < fullEnd; o += 64) block(state, data, o);
  const rest = end - o;
  for (let i = 0; i < rest; i++) tail[i] = data[o + i];
  tail[rest] = 0x80;
  const padded = rest < 56 ? 64 : 128;
  tail.fill(0, rest + 1, padded - 8);
  // Message length in bits, 64-bit little-endian; lengths here are < 2^32 bytes.
  const low = (length * 8) % 0x100000000;
  const high = Math.floor(length / 0x20000000);
  const p = padded - 8;
  tail[p] = low & 0xff;
  tail[p + 1] = (low >>> 8) & 0xff;
  tail[p + 2] = (low >>> 16) & 0xff;
  tail[p + 3] = (low >>> 24) & 0xff;
  tail[p + 4] = high & 0xff;
  tail[p + 5] = (high >>> 8) & 0xff;
  tail[p + 6] = (high >>> 16) & 0xff;
  tail[p + 7] = (high >>> 24) & 0xff;
  block(state, tail, 0);
  if (padded === 128) block(state, tail, 64);
}

function writeState(out: Uint8Array, offset: number): void {
  for (let i = 0; i < 4; i++) {
    const v = state[i];
    out[offset + 4 * i] = v & 0xff;
    out[offset + 4 * i + 1] = (v >>> 8) & 0xff;
    out[offset + 4 * i + 2] = (v >>> 16) & 0xff;
    out[offset + 4 * i + 3] = (v >>> 24) & 0xff;
  }
}

/** Write the 16-byte MD5 digest of data[start, end) into out at outOffset. */
export function md5Into(data: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): void {
  if (end - start >= NATIVE_MD5_THRESHOLD) {
    const digest = nativeMd5(data.subarray(start, end));
    for (let i = 0; i < 16; i++) out[outOffset + i] = digest[i];
    return;
  }
  jsMd5(data, start, end);
  writeState(out, outOffset);
}

/** Whether the MD5 digest of data[start, end) equals the 16 bytes of expected at expectedOffset. */
export function md5Matches(
  data: Uint8Array,
  start: number,
  end: number,
  expected: Uint8Array,
  expectedOffset: number,
): boolean {
  md5Into(data, start, end, scratchDigest, 0);
  for (let i = 0; i < 16; i++) if (scratchDigest[i] !== expected[expectedOffset + i]) return false;
  return true;
}
