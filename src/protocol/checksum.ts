/**
 * A frame's CHECKSUM, chosen by its VERSION byte: 1 is the MD5 digest of the payload (protocol v1's
 * default), 2 the CRC32 of the payload, big-endian, in the first 4 of the same 16 bytes and zeros
 * after it. Frames describe themselves, so both decoders take either at any time; a worker sends
 * VERSION 2 only after its hello agreed on `"Checksum":"crc32"`, and so does the server.
 *
 * Why offer CRC32: both standard libraries compute it 4-6× faster than MD5 (34 KB: node 17 µs
 * vs 106 µs, Python 24 µs vs 95 µs), about 6% of the stage's CPU per message on small messages.
 * It detects every burst of up to 32 bits and any other corruption but one in 2^32; frames
 * travel over loopback from an authenticated peer, so an integrity check is all it needs to be.
 */
import { hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { CHECKSUM_BYTES, FRAME_VERSION, FRAME_VERSION_CRC32 } from './frame-constants.js';

/**
 * MD5 of data[start, end) written into out at outOffset. Only the frames before hello agrees on CRC32
 * use it (two hellos per connection), so node:crypto's fixed cost per call does not matter.
 * (`crypto.hash` needs Node 20.12, `zlib.crc32` 20.15: package.json's `engines` says so.)
 */
export function md5Into(data: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): void {
  out.set(hash('md5', data.subarray(start, end), 'buffer'), outOffset);
}

/** Whether field[at, at + 16) is the MD5 of data[start, end). */
export function md5Matches(data: Uint8Array, start: number, end: number, field: Uint8Array, at: number): boolean {
  const digest = hash('md5', data.subarray(start, end), 'buffer');
  for (let i = 0; i < CHECKSUM_BYTES; i++) if (field[at + i] !== digest[i]) return false;
  return true;
}

/** The checksums a connection can agree on in hello. */
export type Checksum = 'md5' | 'crc32';

/** The VERSION byte of frames with this checksum. */
export function frameVersion(checksum: Checksum): number {
  return checksum === 'crc32' ? FRAME_VERSION_CRC32 : FRAME_VERSION;
}

/** True for a VERSION byte this code decodes. */
export function knownVersion(version: number): boolean {
  return version === FRAME_VERSION || version === FRAME_VERSION_CRC32;
}

/** Write the CHECKSUM field for a frame of `version` around data[start, end) into out at `at`. */
export function writeChecksum(version: number, data: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
  if (version !== FRAME_VERSION_CRC32) {
    md5Into(data, start, end, out, at);
    return;
  }
  const c = crc32(data.subarray(start, end));
  out[at] = c >>> 24;
  out[at + 1] = (c >>> 16) & 0xff;
  out[at + 2] = (c >>> 8) & 0xff;
  out[at + 3] = c & 0xff;
  out.fill(0, at + 4, at + CHECKSUM_BYTES);
}

/** Whether the CHECKSUM field at field[at] is right for a frame of `version` around data[start, end). */
export function checksumMatches(version: number, data: Uint8Array, start: number, end: number, field: Uint8Array, at: number): boolean {
  if (version !== FRAME_VERSION_CRC32) return md5Matches(data, start, end, field, at);
  const c = crc32(data.subarray(start, end));
  if (field[at] !== c >>> 24 || field[at + 1] !== ((c >>> 16) & 0xff) || field[at + 2] !== ((c >>> 8) & 0xff) || field[at + 3] !== (c & 0xff)) return false;
  for (let i = at + 4; i < at + CHECKSUM_BYTES; i++) if (field[i] !== 0) return false;
  return true;
}
