/**
 * Byte layout of a protocol frame (both directions):
 *   BEGIN "KPYS" (4) | VERSION (1) | CHECKSUM(payload) (16) | LENGTH uint32 BE (4) | PAYLOAD | END "KPYE" (4)
 * VERSION 1: CHECKSUM is the MD5 digest; VERSION 2: the CRC32, big-endian, then 12 zero bytes (checksum.ts).
 */

/** The frame start marker, ASCII "KPYS". */
export const BEGIN = Buffer.from('KPYS', 'latin1');

/** The frame end marker, ASCII "KPYE". */
export const END = Buffer.from('KPYE', 'latin1');

/** The frame version of protocol v1: an MD5 checksum. Every peer speaks it. */
export const FRAME_VERSION = 1;

/** The same frame with a CRC32 checksum, sent once hello agreed on it. */
export const FRAME_VERSION_CRC32 = 2;

/** Offset of the VERSION byte within a frame. */
export const VERSION_OFFSET = 4;

/** Offset of the 16-byte CHECKSUM field within a frame. */
export const CHECKSUM_OFFSET = 5;

/** Size of the CHECKSUM field (an MD5 digest, or a CRC32 and zeros). */
export const CHECKSUM_BYTES = 16;

/** Offset of the big-endian uint32 payload length within a frame. */
export const LENGTH_OFFSET = 21;

/** Bytes before the payload: BEGIN + VERSION + CHECKSUM + LENGTH. */
export const HEADER_BYTES = 25;

/** Bytes after the payload: END. */
export const TRAILER_BYTES = 4;

/** Header plus trailer: the size of a frame with an empty payload. */
export const FRAME_OVERHEAD = HEADER_BYTES + TRAILER_BYTES;

/** Default largest payload accepted or produced (64 MiB); bigger messages go through spool files. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** The LENGTH field is a uint32, so no setting can allow more than this. */
export const MAX_ENCODABLE_PAYLOAD_BYTES = 0xffffffff;
