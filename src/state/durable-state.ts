/**
 * Durable partition state (--state-dir / stateDir): restores each partition's state from the store at
 * start, and commits checkpoints off the per-message path. The consumer of the stage's records (the
 * CLI's writer, the API's `for await`) reports each batch it has taken (`consumed`); that only folds the
 * batch's state changes into a map of dirty entries per partition and moves the partition's position.
 * A checkpoint turns those maps into one store transaction, so its cost grows with the keys changed
 * since the last one, not with the messages.
 *
 * Why the consumer and not the lane: a checkpoint must hold the state as of exactly what was written
 * (the lanes' mirror runs ahead of the writer by whatever waits in the result queue), so that on resume
 * each input's outputs are in the file once: the ones a checkpoint reflects are kept (and skipped in the
 * input), the rest are cut off and produced again.
 */
import { CHANGE_WIDTH, type StateChanges } from '../context/state-table.js';
import type { Batch } from '../engine/batch.js';
import type { CheckpointMeta, JobIdentity } from './checkpoint-meta.js';
import type { EmbeddedStateStore } from './embedded-state-store.js';

/** Dirty entries of one partition: model → key → [text (null: deleted), expiresAt]. */
type Dirty = Map<string, Map<string, [string | null, number | null]>>;

/** The output files' lengths at a checkpoint (the CLI with --output / --errors files). */
export interface FileLengths { outputBytes: number | null; errorBytes: number | null }

export class DurableState {
  private dirty: Dirty[];
  /** Per partition: every consumed message's offset is below this (resume skips below it). */
  private readonly below: number[];
  private rejectsBelow: number;
  private seq: number;
  /** Checkpoints run one after another: a later one never commits before an earlier one. */
  private chain: Promise<void> = Promise.resolve();
  /** Checkpoints taken by this stage (metrics, tests). */
  checkpoints = 0;
  /**
   * The output files' lengths right now, matching what was consumed; null when they cannot be known this
   * instant (bytes still buffered), and the periodic checkpoint waits for the next tick. The CLI sets it.
   */
  files: () => FileLengths | null = () => ({ outputBytes: null, errorBytes: null });
  /** The input's fingerprint for the metas (the CLI sets it for a file input). */
  fingerprint: string | null = null;
  /**
   * The CLI's runs over an input can resume, so their periodic checkpoints are resume points; the API's
   * never are (its sources have no offsets to come back to): they are marked finished.
   */
  resumable = false;
  private timer: NodeJS.Timeout | null = null;
  private committing = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly store: EmbeddedStateStore, private readonly job: JobIdentity, start: { below: number[]; rejectsBelow: number; seq: number }) {
    this.dirty = Array.from({ length: job.partitions }, () => new Map());
    this.below = start.below;
    this.rejectsBelow = start.rejectsBelow;
    this.seq = start.seq;
  }

  get dir(): string {
    return this.store.dir;
  }

  /** Checkpoint every `intervalMs` while the stage runs (never two commits at once). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (this.committing) return;
      const files = this.files();
      if (files === null) return;
      this.committing = true;
      this.checkpoint(files, !this.resumable).then(() => { this.committing = false; }, (err: unknown) => {
        this.committing = false;
        this.onError(err);
      });
    }, intervalMs);
    this.timer.unref();
  }

  /** A periodic checkpoint failed (disk full, store damaged): the stage logs it; the next one tries again. */
  onError: (err: unknown) => void = () => {};

  /** The consumer took every record of `batch`: its state changes and position count from now on. */
  consumed(batch: Batch): void {
    if (batch.count === 0) return;
    const next = batch.offsets[batch.count - 1]! + 1;
    if (batch.partition === null) {
      if (next > this.rejectsBelow) this.rejectsBelow = next;
      return;
    }
    if (next > this.below[batch.partition]!) this.below[batch.partition] = next;
    const changes = batch.outcomes?.state;
    if (changes !== undefined) this.fold(batch.partition, changes);
  }

  /** Mark expired or removed entries deleted (a removed model, entries expired while stored). */
  deleted(partition: number, model: string, keys: Iterable<string>): void {
    const dirty = this.dirty[partition]!;
    let values = dirty.get(model);
    if (values === undefined) dirty.set(model, (values = new Map()));
    for (const key of keys) values.set(key, [null, null]);
  }

  /**
   * Commit everything consumed so far as one transaction, with `files` as the output lengths, and
   * `finished` when the input was read to its end. Resolves once committed (`durable`: also flushed to disk).
   */
  checkpoint(files: FileLengths, finished: boolean, durable = false): Promise<void> {
    const dirty = this.dirty;
    this.dirty = dirty.map(() => new Map());
    const seq = ++this.seq;
    const at = new Date().toISOString();
    const units = dirty.map((entries, unit) => {
      const meta: CheckpointMeta = {
        job: { ...this.job, fingerprint: this.fingerprint }, seq, finished, below: this.below[unit]!, rejectsBelow: this.rejectsBelow, ...files, at,
      };
      return { unit, changes: flatten(entries), meta };
    });
    const commit = this.chain.then(() => this.store.commit(units)).then(() => {
      this.checkpoints++;
      return durable ? this.store.flushed() : undefined;
    }, (err: unknown) => {
      // Nothing of it was stored: its entries go back into the dirty maps (under anything newer), so the
      // next checkpoint still writes them.
      dirty.forEach((entries, unit) => this.restoreDirty(unit, entries));
      throw err;
    });
    this.chain = commit.catch(() => {});
    return commit;
  }

  /** A checkpoint now, flushed to disk (`stage.checkpoint()`). */
  checkpointNow(): Promise<void> {
    return this.checkpoint(this.files() ?? { outputBytes: null, errorBytes: null }, !this.resumable, true);
  }

  /** The API's last checkpoint at close, then the store closed. */
  async finish(): Promise<void> {
    try {
      await this.checkpoint({ outputBytes: null, errorBytes: null }, true, true);
    } finally {
      await this.close();
    }
  }

  /** Stop checkpointing and close the store (once; later calls wait for the first). */
  close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.closing ??= this.chain.then(() => this.store.close());
    return this.closing;
  }

  private restoreDirty(partition: number, entries: Dirty): void {
    const dirty = this.dirty[partition]!;
    for (const [model, values] of entries) {
      let now = dirty.get(model);
      if (now === undefined) dirty.set(model, (now = new Map()));
      for (const [key, change] of values) if (!now.has(key)) now.set(key, change);
    }
  }

  private fold(partition: number, changes: StateChanges): void {
    const dirty = this.dirty[partition]!;
    for (let k = 0; k + CHANGE_WIDTH <= changes.length; k += CHANGE_WIDTH) {
      const model = changes[k] as string;
      let values = dirty.get(model);
      if (values === undefined) dirty.set(model, (values = new Map()));
      values.set(changes[k + 1] as string, [changes[k + 2] as string | null, changes[k + 3] as number | null]);
    }
  }
}

function flatten(entries: Dirty): StateChanges {
  const out: StateChanges = [];
  for (const [model, values] of entries) for (const [key, [text, expiresAt]] of values) out.push(model, key, text, expiresAt);
  return out;
}
