/**
 * A partition's state as the host keeps it: per model, keys to the JSON text the Python server
 * wrote (never parsed on the way, so integers beyond 2^53 stay exact), and, for a key set with a
 * TTL, when it expires. The worker keeps one (it restores every new connection from it) and the
 * main thread a mirror (it survives the worker thread, and `stage.state(partition)` reads it).
 * Both change only through `apply` (and `drop`/`load`).
 */

/**
 * Changes of one request or task, flat groups of four: model, key, the new JSON text (null:
 * deleted), and when the entry expires (ms since the epoch; null: never).
 */
export type StateChanges = (string | number | null)[];

/** Values per change in StateChanges. */
export const CHANGE_WIDTH = 4;

/** One entry as it crosses threads: key, JSON text, and its expiry (absent or null: none). */
export type SnapshotEntry = [string, string] | [string, string, number | null];

/** A whole state, as it crosses threads: model to its entries. */
export type StateSnapshot = Record<string, SnapshotEntry[]>;

/** Counted per entry besides its key and value (py/pystage/state_journal.py, ENTRY_OVERHEAD). */
export const ENTRY_OVERHEAD = 8;
/** Counted more for an entry with an expiry (py/pystage/state_journal.py, EXPIRY_OVERHEAD). */
export const EXPIRY_OVERHEAD = 16;

/** One model's entries: key -> JSON text, and key -> expiry for the keys that have one. */
interface ModelState {
  values: Map<string, string>;
  expiries: Map<string, number>;
}

/** One partition's state: model -> key -> JSON text (and expiry). */
export class StateTable {
  private readonly models = new Map<string, ModelState>();
  /** Bytes as the server counts them against maxStateBytes. */
  bytes = 0;
  keys = 0;

  /** Apply changes (groups of four: model, key, text|null, expiresAt|null) in order. */
  apply(changes: StateChanges): void {
    for (let k = 0; k + CHANGE_WIDTH - 1 < changes.length; k += CHANGE_WIDTH) {
      this.set(changes[k] as string, changes[k + 1] as string, changes[k + 2] as string | null, changes[k + 3] as number | null);
    }
  }

  /** Set or (text null) delete one entry; `expiresAt` null keeps it until deleted. */
  set(model: string, key: string, text: string | null, expiresAt: number | null = null): void {
    let state = this.models.get(model);
    const before = state?.values.get(key);
    if (before !== undefined) {
      this.bytes -= entrySize(key, before, state!.expiries.get(key) ?? null);
      this.keys--;
    }
    if (text === null) {
      state?.values.delete(key);
      state?.expiries.delete(key);
      if (state?.values.size === 0) this.models.delete(model);
      return;
    }
    if (state === undefined) this.models.set(model, (state = { values: new Map(), expiries: new Map() }));
    state.values.set(key, text);
    if (expiresAt === null) state.expiries.delete(key);
    else state.expiries.set(key, expiresAt);
    this.bytes += entrySize(key, text, expiresAt);
    this.keys++;
  }

  /** The keys one model has. */
  keysOf(model: string): string[] {
    return [...(this.models.get(model)?.values.keys() ?? [])];
  }

  /** Forget a removed model's state. */
  drop(model: string): void {
    const state = this.models.get(model);
    if (state === undefined) return;
    for (const [key, text] of state.values) {
      this.bytes -= entrySize(key, text, state.expiries.get(key) ?? null);
      this.keys--;
    }
    this.models.delete(model);
  }

  /** Replace everything with a snapshot. */
  load(snapshot: StateSnapshot): void {
    this.models.clear();
    this.bytes = 0;
    this.keys = 0;
    for (const [model, entries] of Object.entries(snapshot)) {
      for (const [key, text, expiresAt] of entries) this.set(model, key, text, expiresAt ?? null);
    }
  }

  /** The whole state, for another thread. */
  snapshot(): StateSnapshot {
    const out: StateSnapshot = {};
    for (const [model, state] of this.models) {
      out[model] = [...state.values].map(([key, text]): SnapshotEntry => {
        const expiresAt = state.expiries.get(key);
        return expiresAt === undefined ? [key, text] : [key, text, expiresAt];
      });
    }
    return out;
  }

  /** Every entry in order: model, key, JSON text, expiry (null: none). */
  *entries(): Generator<[string, string, string, number | null]> {
    for (const [model, state] of this.models) {
      for (const [key, text] of state.values) yield [model, key, text, state.expiries.get(key) ?? null];
    }
  }

  /** The whole state as restoreState's `States` JSON text, values spliced in as they are. */
  toJson(): string {
    const parts: string[] = [];
    for (const [model, state] of this.models) {
      const entries: string[] = [];
      for (const [key, text] of state.values) {
        const expiresAt = state.expiries.get(key);
        entries.push(expiresAt === undefined ? `[${JSON.stringify(key)},${text}]` : `[${JSON.stringify(key)},${text},${expiresAt}]`);
      }
      parts.push(`${JSON.stringify(model)}:[${entries.join(',')}]`);
    }
    return `{${parts.join(',')}}`;
  }

  /**
   * A read-only copy with every value parsed: model -> key -> value; keys expired by `now` read as absent
   * (they leave the table when the server removes them, at the model's next batch in the partition).
   */
  read(now = Date.now()): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [model, state] of this.models) {
      const copy: Record<string, unknown> = {};
      for (const [key, text] of state.values) {
        const expiresAt = state.expiries.get(key);
        if (expiresAt === undefined || expiresAt > now) copy[key] = JSON.parse(text);
      }
      out[model] = Object.freeze(copy);
    }
    return Object.freeze(out);
  }
}

/**
 * What one entry counts toward maxStateBytes, as the server counts it (py/pystage/state_journal.py):
 * what crosses the wire, so the key as JSON (escapes included, quotes not: `"\x01"` is 6 bytes) and
 * the value's JSON text, ENTRY_OVERHEAD, and EXPIRY_OVERHEAD for an entry with an expiry.
 */
export function entrySize(key: string, text: string, expiresAt: number | null): number {
  return keyWireBytes(key) + Buffer.byteLength(text) + ENTRY_OVERHEAD + (expiresAt === null ? 0 : EXPIRY_OVERHEAD);
}

/** A key's bytes as a JSON string without its quotes; printable ASCII without `"` or `\\` is its length. */
function keyWireBytes(key: string): number {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return Buffer.byteLength(JSON.stringify(key)) - 2;
  }
  return key.length;
}
