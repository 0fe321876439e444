/**
 * Test oracle: the decoder contract stated as a naive loop over a whole buffer, independent of
 * src/protocol (own constants, node:crypto MD5, node:zlib CRC32). Slow and simple on purpose.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { RecordedEvent } from './frame-events.js';

const BEGIN = Buffer.from('KPYS', 'latin1');
const END = Buffer.from('KPYE', 'latin1');

/** Events (payloads as hex), total skipped, and bytes still pending at the end of `data`. */
export function referenceDecode(
  data: Buffer,
  maxFrameBytes: number,
): { events: RecordedEvent[]; skipped: number; pending: number } {
  const events: RecordedEvent[] = [];
  let skipped = 0;
  let i = 0;
  const n = data.length;
  for (;;) {
    const j = data.indexOf(BEGIN, i);
    if (j < 0) {
      let keep = 0;
      for (const k of [3, 2, 1]) {
        if (n - i >= k && data.subarray(n - k).equals(BEGIN.subarray(0, k))) {
          keep = k;
          break;
        }
      }
      return { events, skipped: skipped + n - i - keep, pending: keep };
    }
    skipped += j - i;
    i = j;
    if (n - i < 5) return { events, skipped, pending: n - i };
    const version = data[i + 4];
    if (version !== 1 && version !== 2) {
      events.push({ event: 'error', kind: 'bad-version' });
      i += 4;
      continue;
    }
    if (n - i < 25) return { events, skipped, pending: n - i };
    const length = data.readUInt32BE(i + 21);
    if (length > maxFrameBytes) {
      events.push({ event: 'error', kind: 'too-long' });
      i += 4;
      continue;
    }
    if (n - i < 29 + length) return { events, skipped, pending: n - i };
    if (!data.subarray(i + 25 + length, i + 29 + length).equals(END)) {
      events.push({ event: 'error', kind: 'missing-end' });
      i += 4;
      continue;
    }
    const payload = data.subarray(i + 25, i + 25 + length);
    // VERSION 1: MD5 digest; VERSION 2: CRC32 big-endian, then 12 zero bytes.
    const digest = version === 1 ? createHash('md5').update(payload).digest() : Buffer.concat([Buffer.from(crc32(payload).toString(16).padStart(8, '0'), 'hex'), Buffer.alloc(12)]);
    const hex = payload.toString('hex');
    if (digest.equals(data.subarray(i + 5, i + 21))) events.push({ event: 'frame', payload: hex });
    else events.push({ event: 'error', kind: 'bad-checksum', payload: hex });
    i += 29 + length;
  }
}
