/** Frame encoding: exactly-sized allocations that own their memory, ready to write or transfer. */
import {
  CHECKSUM_OFFSET,
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_OVERHEAD,
  HEADER_BYTES,
  LENGTH_OFFSET,
  MAX_ENCODABLE_PAYLOAD_BYTES,
  VERSION_OFFSET,
} from './frame-constants.js';
import { FrameTooLargeError } from '../api/errors.js';
import { frameVersion, writeChecksum, type Checksum } from './checksum.js';

function payloadLength(payload: Buffer | string, maxFrameBytes: number): number {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  if (length > maxFrameBytes || length > MAX_ENCODABLE_PAYLOAD_BYTES) {
    throw new FrameTooLargeError(length, Math.min(maxFrameBytes, MAX_ENCODABLE_PAYLOAD_BYTES));
  }
  return length;
}

function writeFrame(target: Buffer, at: number, payload: Buffer | string, length: number, version: number): number {
  target[at] = 0x4b; // K
  target[at + 1] = 0x50; // P
  target[at + 2] = 0x59; // Y
  target[at + 3] = 0x53; // S
  target[at + VERSION_OFFSET] = version;
  target.writeUInt32BE(length, at + LENGTH_OFFSET);
  const start = at + HEADER_BYTES;
  if (typeof payload === 'string') target.write(payload, start, length, 'utf8');
  else payload.copy(target, start);
  const end = start + length;
  writeChecksum(version, target, start, end, target, at + CHECKSUM_OFFSET);
  target[end] = 0x4b; // K
  target[end + 1] = 0x50; // P
  target[end + 2] = 0x59; // Y
  target[end + 3] = 0x45; // E
  return end + 4;
}

/**
 * Encode one frame around `payload` (a string is written as UTF-8).
 * The result owns its ArrayBuffer (allocUnsafeSlow, not the shared pool), so it can be
 * transferred to another thread. Throws FrameTooLargeError above `maxFrameBytes`. The checksum is
 * MD5 (VERSION 1) unless the connection agreed on another.
 */
export function encodeFrame(payload: Buffer | string, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES, checksum: Checksum = 'md5'): Buffer {
  const length = payloadLength(payload, maxFrameBytes);
  const frame = Buffer.allocUnsafeSlow(FRAME_OVERHEAD + length);
  writeFrame(frame, 0, payload, length, frameVersion(checksum));
  return frame;
}

/**
 * Encode several frames back to back into one buffer that owns its ArrayBuffer.
 * Why: an own ArrayBuffer costs about as much as the rest of encoding a small frame, so
 * pipelined requests are cheaper encoded (and written, or transferred) together.
 */
export function encodeFrames(payloads: readonly (Buffer | string)[], maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES, checksum: Checksum = 'md5'): Buffer {
  const lengths = payloads.map((p) => payloadLength(p, maxFrameBytes));
  let total = 0;
  for (const length of lengths) total += FRAME_OVERHEAD + length;
  const frames = Buffer.allocUnsafeSlow(total);
  let at = 0;
  const version = frameVersion(checksum);
  for (let i = 0; i < payloads.length; i++) at = writeFrame(frames, at, payloads[i]!, lengths[i]!, version);
  return frames;
}

/** Encode `message` as a frame whose payload is its JSON text. */
export function encodeJsonFrame(message: object, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): Buffer {
  return encodeFrame(JSON.stringify(message), maxFrameBytes);
}
