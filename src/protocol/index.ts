/** The wire protocol between a partition and its Python server: frames, their codec, and messages. */

/** Frame layout constants (markers, offsets, sizes, default limit). */
export * from './frame-constants.js';
/** Frame error kinds and the errors of the frame layer. */
export { FRAME_ERROR_KINDS, type FrameErrorKind } from './frame-errors.js';
export { BadJsonError, FrameError, FrameTooLargeError, type BadJsonReason } from '../api/errors.js';
/** encodeFrame / encodeFrames / encodeJsonFrame: exactly-sized, transferable frame buffers. */
export { encodeFrame, encodeFrames, encodeJsonFrame } from './frame-encoder.js';
/** FrameDecoder: the streaming, resyncing decoder. */
export { FrameDecoder, type FrameDecoderOptions } from './frame-decoder.js';
/** parseJsonPayload: payload bytes to a JSON object, or BadJsonError ("bad-json"). */
export { parseJsonPayload } from './payload-json.js';
/** Typed requests, replies, commands and reply codes. */
export * from './messages.js';
/** Frame checksums by VERSION: MD5 (1) or CRC32 (2), agreed in hello; MD5 on its own for tests and tools. */
export { checksumMatches, frameVersion, knownVersion, md5Into, md5Matches, writeChecksum, type Checksum } from './checksum.js';
