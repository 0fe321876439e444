import type { StateChanges } from '../context/state-table.js';

/** One stored state entry: the JSON text exactly as the Python server wrote it (never re-encoded). */
export interface StoredEntry { model: string; key: string; text: string; expiresAt: number | null }

/**
 * Where partition (or shard) state lives between runs. `unit` is a partition number for the
 * embedded store and a shard number for Redis. `Meta` is what a commit carries besides state:
 * the embedded store's checkpoint positions (input offset, output/error file lengths, fingerprint);
 * Redis' fencing token, outputs to XADD and entry IDs to XACK.
 */
export interface StateStore<Meta> {
  /** Everything stored for one unit, and the meta of its last commit (null: never committed). */
  load(unit: number): Promise<{ entries: StoredEntry[]; meta: Meta | null }>;
  /** Apply each unit's changes with its meta, all or nothing (one transaction / one fenced script). */
  commit(units: { unit: number; changes: StateChanges; meta: Meta }[]): Promise<void>;
  close(): Promise<void>;
}
