/**
 * A partition's state as the host keeps it: per model, keys to the JSON text the Python server
 * wrote (never parsed on the way, so integers beyond 2^53 stay exact). The worker keeps one (it
 * restores every new connection from it) and the main thread a mirror (it survives the worker
 * thread, and `stage.state(partition)` reads it). Both change only through `apply`.
 */

/** Changes of one request or task: triples of model, key, and the new JSON text (null: deleted). */
export type StateChanges = (string | null)[];

/** Slots per change in StateChanges (model, key, text): readers outside this file step by it. */
export const CHANGE_WIDTH = 3;

/** A whole state, as it crosses threads: model to [key, JSON text] pairs. */
export type StateSnapshot = Record<string, [string, string][]>;

/** Counted per entry besides its key and value (py/pystage/partition_state.py, ENTRY_OVERHEAD). */
export const ENTRY_OVERHEAD = 8;

/** One partition's state: model -> key -> JSON text. */
export class StateTable {
  private readonly models = new Map<string, Map<string, string>>();
  /** Bytes as the server counts them against maxStateBytes. */
  bytes = 0;
  keys = 0;

  /** Apply changes (model, key, text|null triples) in order. */
  apply(changes: StateChanges): void {
    for (let k = 0; k + 2 < changes.length; k += 3) this.set(changes[k]!, changes[k + 1]!, changes[k + 2]!);
  }

  /** Set or (text null) delete one entry. */
  set(model: string, key: string, text: string | null): void {
    let values = this.models.get(model);
    const before = values?.get(key);
    if (before !== undefined) {
      this.bytes -= size(key, before);
      this.keys--;
    }
    if (text === null) {
      values?.delete(key);
      if (values?.size === 0) this.models.delete(model);
      return;
    }
    if (values === undefined) this.models.set(model, (values = new Map()));
    values.set(key, text);
    this.bytes += size(key, text);
    this.keys++;
  }

  /** Forget a removed model's state. */
  drop(model: string): void {
    const values = this.models.get(model);
    if (values === undefined) return;
    for (const [key, text] of values) {
      this.bytes -= size(key, text);
      this.keys--;
    }
    this.models.delete(model);
  }

  /** Replace everything with a snapshot. */
  load(snapshot: StateSnapshot): void {
    this.models.clear();
    this.bytes = 0;
    this.keys = 0;
    for (const [model, entries] of Object.entries(snapshot)) for (const [key, text] of entries) this.set(model, key, text);
  }

  /** The whole state, for another thread. */
  snapshot(): StateSnapshot {
    const out: StateSnapshot = {};
    for (const [model, values] of this.models) out[model] = [...values];
    return out;
  }

  /** The whole state as restoreState's `States` JSON text, values spliced in as they are. */
  toJson(): string {
    const parts: string[] = [];
    for (const [model, values] of this.models) {
      const entries: string[] = [];
      for (const [key, text] of values) entries.push(`[${JSON.stringify(key)},${text}]`);
      parts.push(`${JSON.stringify(model)}:[${entries.join(',')}]`);
    }
    return `{${parts.join(',')}}`;
  }

  /** A read-only copy with every value parsed: model -> key -> value. */
  read(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [model, values] of this.models) {
      const copy: Record<string, unknown> = {};
      for (const [key, text] of values) copy[key] = JSON.parse(text);
      out[model] = Object.freeze(copy);
    }
    return Object.freeze(out);
  }
}

function size(key: string, text: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(text) + ENTRY_OVERHEAD;
}
