/**
 * Byte copies for the hot path. Most spans copied per message (a key, a short output, fixed
 * JSON between them) are a few dozen bytes, where `dst.set(src.subarray(a, b))` costs more in
 * the view it allocates than in the copy; a plain loop allocates nothing.
 */

/** Spans shorter than this are copied byte by byte; longer ones with TypedArray#set. */
const LOOP_LIMIT = 48;

/** Copy bytes [start, end) of `src` into `dst` at `at`; returns the position after them. */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < LOOP_LIMIT) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else {
    dst.set(src.subarray(start, end), at);
  }
  return at + n;
}

/**
 * Write a non-negative safe integer in decimal into `dst` at `at` (room for 16 digits must be
 * there); returns the position after it. Offsets are written per output line, and
 * `String(n)` + a latin1 write costs a string per line.
 */
export function writeDecimal(dst: Uint8Array, at: number, n: number): number {
  if (n < 10) {
    dst[at] = 48 + n;
    return at + 1;
  }
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  let end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    const q = Math.floor(n / 10);
    dst[i] = 48 + (n - q * 10);
    n = q;
  }
  return end;
}
