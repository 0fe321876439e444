/**
 * Errors of the frame layer. The decoder reports damaged frames as kinds (it never throws on
 * input); these classes exist for callers that turn a kind into a thrown or logged error.
 */

/** Why the decoder rejected a frame; the exact strings are shared with the Python decoder. */
export type FrameErrorKind = 'bad-version' | 'too-long' | 'missing-end' | 'bad-checksum';

/** Every FrameErrorKind, in the order the frame is checked. */
export const FRAME_ERROR_KINDS: readonly FrameErrorKind[] = ['bad-version', 'too-long', 'missing-end', 'bad-checksum'];


