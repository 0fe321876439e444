/**
 * One ownership of one shard (`ShardWork`: dropped as a whole when the lease goes, so whatever of
 * it completes later is neither emitted nor committed) and its commits: every shard's queued turns
 * go in one fenced script (a group commit), one script at a time, so a shard's turns reach Redis
 * in the order its batches completed.
 */
import { LeaseLostError } from '../api/errors.js';
import type { StateChanges } from '../context/state-table.js';
import type { RedisStateStore } from './redis-state-store.js';

/** Records plus entries per commit at most (one batch may exceed it). */
export const COMMIT_LIMIT = 4096;

/** What some completed messages of one shard produced, and the entries they complete. */
export interface Turn {
  outputs: Buffer[];
  errors: Buffer[];
  done: string[];
  changes: StateChanges;
}

/** One ownership of one shard. */
export class ShardWork {
  /** Entries fed (or queued to acknowledge) and not yet committed. */
  outstanding = 0;
  readonly queue: Turn[] = [];
  readonly inHand = new Set<string>();
  /** Read own pending entries after this ID first; null: read new ones. */
  pendingFrom: string | null = '0-0';
  reading = false;
  leaving = false;
  seq = 0;
  private drainers: (() => void)[] = [];
  constructor(readonly shard: number, readonly lease: string) {}

  whenDrained(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainers.push(resolve));
  }

  settle(): void {
    if (this.outstanding > 0) return;
    for (const resolve of this.drainers.splice(0)) resolve();
  }

  /** Lost: whoever waits for the drain waits no more. */
  drop(): void {
    this.outstanding = 0;
    this.queue.length = 0;
    this.settle();
  }
}


/** Counters the commits keep. */
export interface CommitCounts {
  acked: number;
  outputRecords: number;
  errorRecords: number;
  dropped: number;
}

export class ShardCommits {
  /** Records and entries queued, all shards. */
  queued = 0;
  committing: Promise<void> | null = null;
  failure: unknown = null;

  /**
   * `works`: the current ownership of each shard (a turn of any other is never committed);
   * `forget`: a shard's lease turned out lost; `fail`: nothing more can be committed.
   */
  constructor(private readonly store: RedisStateStore, private readonly works: Map<number, ShardWork>, private readonly counts: CommitCounts,
    private readonly forget: (shard: number, lease: string) => void, private readonly fail: () => void) {}

  /** A shard was lost: its queued turns go with it. */
  dropped(work: ShardWork): void {
    for (const turn of work.queue) this.queued -= size(turn);
    this.counts.dropped += work.outstanding;
    work.drop();
  }

  queue(work: ShardWork, turn: Turn): void {
    work.queue.push(turn);
    this.queued += size(turn);
    this.kick();
  }

  kick(): void {
    if (this.committing !== null || this.queued === 0 || this.failure !== null) return;
    this.committing = this.commitQueued().catch((err: unknown) => {
      this.failure ??= err;
      this.fail();
    }).finally(() => {
      this.committing = null;
      this.kick();
    });
  }

  /** Group commit: every shard's queued turns in one script, one at a time, in completion order per shard. */
  private async commitQueued(): Promise<void> {
    for (;;) {
      const units: { work: ShardWork; turn: Turn }[] = [];
      let n = 0;
      for (const work of this.works.values()) {
        if (work.queue.length === 0 || n >= COMMIT_LIMIT) continue;
        const merged: Turn = { outputs: [], errors: [], done: [], changes: [] };
        while (work.queue.length > 0 && (merged.done.length === 0 || n + size(work.queue[0]!) <= COMMIT_LIMIT)) {
          const turn = work.queue.shift()!;
          n += size(turn);
          this.queued -= size(turn);
          for (const r of turn.outputs) merged.outputs.push(r);
          for (const r of turn.errors) merged.errors.push(r);
          for (const id of turn.done) merged.done.push(id);
          for (const c of turn.changes) merged.changes.push(c);
        }
        units.push({ work, turn: merged });
      }
      if (units.length === 0) return;
      try {
        await this.store.commit(units.map(({ work, turn }) => ({
          unit: work.shard, changes: turn.changes,
          meta: { lease: work.lease, commitId: `${work.lease}:${++work.seq}`, outputs: turn.outputs, errors: turn.errors, ids: turn.done },
        })));
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        for (const { work } of units) if (err.shards.includes(work.shard)) this.forget(work.shard, work.lease);
        // Nothing was written: the others go again, first in their queues.
        for (const { work, turn } of units) {
          if (this.works.get(work.shard) !== work) continue;
          work.queue.unshift(turn);
          this.queued += size(turn);
        }
        continue;
      }
      for (const { work, turn } of units) {
        this.counts.acked += turn.done.length;
        this.counts.outputRecords += turn.outputs.length;
        this.counts.errorRecords += turn.errors.length;
        for (const id of turn.done) work.inHand.delete(id);
        work.outstanding -= turn.done.length;
        work.settle();
      }
    }
  }

}

function size(turn: Turn): number {
  return turn.outputs.length + turn.errors.length + turn.done.length;
}
