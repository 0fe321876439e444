/**
 * The partitions' state in an embedded transactional store: LMDB through lmdb-js (ACID, copy-on-write
 * B-tree: a process killed at any instant leaves the last committed transaction, never a mix). One
 * commit is one LMDB write transaction; lmdb-js runs it on its own write thread, so the main thread only
 * encodes the changes. Entries are laid out by src/state/entry-codec.ts.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { CHANGE_WIDTH, type StateChanges } from '../context/state-table.js';
import { ResumeRefusedError, StateStoreError } from '../api/errors.js';
import type { CheckpointMeta } from './checkpoint-meta.js';
import { EntryDecoder, encodeValue, type DecodedEntry, entryKey, entryPrefix, FORMAT_KEY, metaKey, prefixEnd } from './entry-codec.js';
import type { StateStore, StoredEntry } from './state-store.js';

const FORMAT = 'pystage-state';
const VERSION = 1;
/** Address space reserved for the map (not disk): room for far more state than maxStateBytes × 256 partitions. */
const MAP_SIZE = 64 * 1024 ** 3;

interface Format { format: string; version: number; partitions: number }

export class EmbeddedStateStore implements StateStore<CheckpointMeta> {
  private constructor(readonly dir: string, private readonly db: RootDatabase<Buffer, Buffer>, private format: Format | null) {}

  /**
   * Open (or create) the store in `dir`. A DIR that holds other files, another LMDB database or a damaged
   * one fails here with a StateStoreError naming DIR; nothing is half-read.
   */
  static open(dir: string, options: { readOnly?: boolean } = {}): EmbeddedStateStore {
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) throw new StateStoreError(`state dir ${dir} is not a directory`);
      const foreign = readdirSync(dir).filter((f) => f !== 'data.mdb' && f !== 'lock.mdb');
      if (foreign.length > 0) throw new StateStoreError(`state dir ${dir} is not a pystage state store: it holds ${foreign.slice(0, 3).join(', ')}; give an empty or a pystage state directory`);
    } else if (options.readOnly) throw new StateStoreError(`state dir ${dir} does not exist`);
    checkDataFile(dir);
    let db: RootDatabase<Buffer, Buffer>;
    let format: Format | null;
    try {
      db = open<Buffer, Buffer>({
        path: dir, encoding: 'binary', keyEncoding: 'binary', compression: false, cache: false,
        mapSize: MAP_SIZE, readOnly: options.readOnly ?? false,
      });
      const raw = db.get(FORMAT_KEY);
      format = raw === undefined ? null : JSON.parse(Buffer.from(raw).toString('utf8')) as Format;
      if (format === null && db.getKeysCount() > 0) throw new Error('it holds an LMDB database that pystage did not write');
    } catch (err) {
      throw new StateStoreError(`state dir ${dir} cannot be used: ${(err as Error).message}`);
    }
    if (format !== null && (format.format !== FORMAT || format.version !== VERSION || !Number.isInteger(format.partitions))) {
      void db.close();
      throw new StateStoreError(`state dir ${dir} holds an unknown format ${JSON.stringify(format)}; this pystage writes ${FORMAT} version ${VERSION}`);
    }
    return new EmbeddedStateStore(dir, db, format);
  }

  /** How many partitions the stored state belongs to (null: a new store). */
  get partitions(): number | null {
    return this.format?.partitions ?? null;
  }

  /** Every partition's meta, or null for a store that was never committed to. */
  metas(): CheckpointMeta[] | null {
    if (this.format === null) return null;
    const metas: CheckpointMeta[] = [];
    for (let p = 0; p < this.format.partitions; p++) {
      const raw = this.db.get(metaKey(p));
      if (raw === undefined) return null;
      metas.push(JSON.parse(Buffer.from(raw).toString('utf8')) as CheckpointMeta);
    }
    return metas;
  }

  async load(unit: number): Promise<{ entries: StoredEntry[]; meta: CheckpointMeta | null }> {
    const entries: StoredEntry[] = [];
    for (const e of this.entries(unit)) entries.push({ model: e.model, key: e.key, text: e.text, expiresAt: e.expiresAt });
    const raw = this.db.get(metaKey(unit));
    return { entries, meta: raw === undefined ? null : JSON.parse(Buffer.from(raw).toString('utf8')) as CheckpointMeta };
  }

  /** The stored entries in key order: of one partition (and model), or all. Each yielded object is reused: copy what you keep. */
  *entries(partition?: number, model?: string): Generator<DecodedEntry> {
    const range = partition === undefined
      ? { start: Buffer.from([1]), end: Buffer.from([2]) }
      : (() => { const prefix = entryPrefix(partition, model); return { start: prefix, end: prefixEnd(prefix) }; })();
    const decoder = new EntryDecoder();
    try {
      for (const { key, value } of this.db.getRange(range)) {
        const decoded = decoder.decode(key, value);
        if (model === undefined || decoded.model === model) yield decoded;
      }
    } catch (err) {
      throw new StateStoreError(`state dir ${this.dir} is damaged: ${(err as Error).message}`);
    }
  }

  async commit(units: { unit: number; changes: StateChanges; meta: CheckpointMeta }[]): Promise<void> {
    await this.db.transaction(() => {
      if (this.format === null) this.writeFormat(units[0]?.meta.job.partitions ?? units.length);
      for (const { unit, changes, meta } of units) {
        for (let k = 0; k + CHANGE_WIDTH <= changes.length; k += CHANGE_WIDTH) {
          const { key, inside } = entryKey(unit, changes[k] as string, changes[k + 1] as string);
          const text = changes[k + 2] as string | null;
          if (text === null) void this.db.remove(key);
          else void this.db.put(key, encodeValue(text, changes[k + 3] as number | null, inside));
        }
        void this.db.put(metaKey(unit), Buffer.from(JSON.stringify(meta)));
      }
    });
  }

  /** Resolves once everything committed is on the disk (not only in the OS's cache). */
  async flushed(): Promise<void> {
    await this.db.flushed;
  }

  /** Forget everything (--reset-state). */
  async reset(): Promise<void> {
    const keys = [...this.db.getKeys({})];
    await this.db.transaction(() => {
      for (const key of keys) void this.db.remove(key);
    });
    this.format = null;
  }

  /**
   * Move every entry to the partition `partitionOf` gives its key among `partitions`, in one transaction;
   * the metas go (the input after this is new).
   */
  async repartition(partitions: number, partitionOf: (key: string) => number): Promise<number> {
    const moved: StoredEntry[] = [];
    const seen = new Map<string, number>();
    for (const e of this.entries()) {
      // The same (model, key) in two partitions: that model does not key its state by the message key,
      // and one of the two would be lost.
      const id = JSON.stringify([e.model, e.key]);
      const first = seen.get(id);
      if (first !== undefined) {
        throw new ResumeRefusedError(`state dir ${this.dir} cannot be repartitioned: model "${e.model}" has key ${JSON.stringify(e.key)} in partitions ${first} and ${e.partition}, so it does not key its state by the message key; keep --partitions ${this.partitions}`);
      }
      seen.set(id, e.partition);
      moved.push({ model: e.model, key: e.key, text: e.text, expiresAt: e.expiresAt });
    }
    const keys = [...this.db.getKeys({})];
    await this.db.transaction(() => {
      for (const key of keys) void this.db.remove(key);
      this.writeFormat(partitions);
      for (const entry of moved) {
        const { key, inside } = entryKey(partitionOf(entry.key), entry.model, entry.key);
        void this.db.put(key, encodeValue(entry.text, entry.expiresAt, inside));
      }
    });
    return moved.length;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private writeFormat(partitions: number): void {
    this.format = { format: FORMAT, version: VERSION, partitions };
    void this.db.put(FORMAT_KEY, Buffer.from(JSON.stringify(this.format)));
  }
}

/** LMDB's meta page magic (MDB_meta.mm_magic), at this offset of both meta pages in lmdb-js's format. */
const META_MAGIC = 0xbeefc0de;
const MAGIC_AT = 24;

/**
 * Look at the data file's two meta pages before LMDB maps it: LMDB trusts its file, and a file that is
 * not one (overwritten, truncated, another program's) can crash the process natively instead of failing.
 */
function checkDataFile(dir: string): void {
  const path = join(dir, 'data.mdb');
  if (!existsSync(path)) return;
  const size = statSync(path).size;
  const head = Buffer.alloc(Math.min(size, 64 * 1024 + 64));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const magicAt = (at: number) => at + MAGIC_AT + 4 <= head.length && head.readUInt32LE(at + MAGIC_AT) === META_MAGIC;
  const pageSizes = [4096, 8192, 16384, 32768, 65536];
  if (!magicAt(0) || !pageSizes.some((page) => magicAt(page) && size % page === 0)) {
    throw new StateStoreError(`state dir ${dir} is damaged or not a pystage state store: ${path} is not an LMDB data file (its meta pages are missing); restore DIR from a backup, or remove it to start over`);
  }
}
