/**
 * Which partition a message belongs to: a stable hash of its key, the same on
 * every run and machine (FNV-1a over the key's UTF-8 text), or round-robin for
 * messages without a key.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a 32-bit hash of a string's UTF-8 bytes. */
export function fnv1a(text: string): number {
  let hash = FNV_OFFSET;
  // Fast path without allocating: for ASCII, the UTF-16 code units are the UTF-8 bytes.
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit > 0x7f) {
      const bytes = Buffer.from(text, 'utf8');
      return fnv1aBytes(bytes, 0, bytes.length);
    }
    hash = Math.imul(hash ^ unit, FNV_PRIME);
  }
  return hash >>> 0;
}

/** FNV-1a 32-bit hash of bytes[start, end). */
export function fnv1aBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return hash >>> 0;
}

/** Maps keys to partitions; keyless messages take turns. */
export class Partitioner {
  private next = 0;

  constructor(readonly partitions: number) {}

  /** The partition of a key; `undefined` or `null` means no key (round-robin). */
  partitionOf(key: unknown): number {
    if (key === undefined || key === null) return this.roundRobin();
    // Strings hash as themselves, so "7" and 7 are different keys only by their JSON text.
    const text = typeof key === 'string' ? key : JSON.stringify(key);
    return fnv1a(text) % this.partitions;
  }

  /** The partition of a key's hash (fnv1a of its text). */
  partitionOfHash(hash: number): number {
    return hash % this.partitions;
  }

  /** The next partition in turn, for a message without a key. */
  roundRobin(): number {
    const p = this.next;
    this.next = (p + 1) % this.partitions;
    return p;
  }
}
