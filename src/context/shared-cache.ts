/**
 * The cache shared by every partition's models (`self.context.cache`) and the host
 * (`stage.cache`). It lives in the main thread, so a value set by one partition is there for every
 * other the moment the set is answered, which is before the setting message's output is emitted.
 * Values are kept as JSON text (a model's values pass through unparsed); bounded by entries and
 * bytes with least-recently-used eviction, and an optional time to live per entry.
 */
import { CacheValueTooLargeError } from '../api/errors.js';



interface Entry {
  text: string;
  bytes: number;
  /** performance.now() after which the entry is gone; Infinity without a TTL. */
  expires: number;
}

/** Counters of the shared cache, in `stage.stats().cache`. */
export interface CacheStats {
  entries: number;
  bytes: number;
  evictions: number;
  expired: number;
}

/** The one shared cache of a stage. */
export class SharedCache {
  /** Insertion order is recency order: a hit moves its entry to the end, eviction takes from the front. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private evictions = 0;
  private expired = 0;

  constructor(private readonly maxEntries: number, private readonly maxBytes: number) {}

  /** The value at key (parsed), or undefined. */
  get(key: string): unknown {
    const text = this.getText(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  /** Store a JSON-serialisable value, for `ttlMs` when given. Throws CacheValueTooLargeError. */
  set(key: string, value: unknown, options: { ttlMs?: number } = {}): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cache value for "${key}" is not JSON-serialisable`);
    this.setText(key, text, options.ttlMs);
  }

  /** Remove key; true if it was there. */
  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.remove(key, entry);
    return true;
  }

  /** The JSON text at key, or undefined when absent or expired; a hit makes it the most recent. */
  getText(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= performance.now()) {
      this.remove(key, entry);
      this.expired++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.text;
  }

  /** Store JSON text as is; evicts the least recently used entries to make room. */
  setText(key: string, text: string, ttlMs?: number | null): void {
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(text);
    if (bytes > this.maxBytes) {
      throw new CacheValueTooLargeError(`cache entry "${key.slice(0, 100)}" takes ${bytes} bytes, more than the whole cache may hold (cacheMaxBytes ${this.maxBytes}): store something smaller or raise cacheMaxBytes`);
    }
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(key, old);
    this.entries.set(key, { text, bytes, expires: ttlMs ? performance.now() + ttlMs : Infinity });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.remove(oldest, entry);
      this.evictions++;
    }
  }

  stats(): CacheStats {
    return { entries: this.entries.size, bytes: this.bytes, evictions: this.evictions, expired: this.expired };
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
