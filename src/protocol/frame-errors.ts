/**
 * Errors of the frame layer. The decoder reports damaged frames as kinds (it never throws on
 * input); these classes exist for callers that turn a kind into a thrown or logged error.
 */
import { PystageError } from '../errors.js';

/** Why the decoder rejected a frame; the exact strings are shared with the Python decoder. */
export type FrameErrorKind = 'bad-version' | 'too-long' | 'missing-end' | 'bad-checksum';

/** Every FrameErrorKind, in the order the frame is checked. */
export const FRAME_ERROR_KINDS: readonly FrameErrorKind[] = ['bad-version', 'too-long', 'missing-end', 'bad-checksum'];

/** A frame received from the other side was damaged (reply code -3 when the server sees one). */
export class FrameError extends PystageError {
  override readonly code = 'PYSTAGE_BAD_FRAME';

  constructor(readonly kind: FrameErrorKind, message = `bad frame: ${kind}`) {
    super(message, { type: kind });
  }
}

/** A payload is too large to send in one frame (over maxFrameBytes, or over the uint32 LENGTH field). */
export class FrameTooLargeError extends PystageError {
  override readonly code = 'PYSTAGE_FRAME_TOO_LARGE';

  constructor(readonly payloadBytes: number, readonly maxFrameBytes: number) {
    super(`payload of ${payloadBytes} bytes exceeds the frame limit of ${maxFrameBytes} bytes`);
  }
}
