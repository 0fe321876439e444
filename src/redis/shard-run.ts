/**
 * Shard mode: a member of a group reading the shard streams S.0 … S.{N-1}. It owns some shards
 * (shard-leases.ts), reads only those, each as one partition of the stage (partition i = shard i,
 * so `self.context.state` is shard i's state whichever member runs it), and commits each completed
 * batch's outputs, error records, state changes and acknowledgements in one fenced script
 * (redis-state-store.ts). Everything about a shard in hand belongs to one `ShardWork`: when the
 * shard is lost, that object is dropped, and whatever of it completes later is dropped too,
 * neither emitted nor committed.
 *
 * Taking a shard: create its group, load its state into its partition (queued behind anything
 * still running there), move every entry of the group still pending on its stream to this member
 * (XAUTOCLAIM from 0, fenced), read them back in ID order, then new entries. Reads are fenced too,
 * so a member that lost a shard can add nothing to its pending list that the new owner would miss.
 */
import type { Redis } from 'ioredis';
import { InvalidOptionError } from '../api/errors.js';
import type { Stage } from '../api/stage.js';
import type { LineBatch } from '../cli/line-reader.js';
import type { StateSnapshot } from '../context/state-table.js';
import type { BatchRange } from '../engine/ordered-merge.js';
import { stageEngine } from '../engine/stage-internals.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { EntryRecords } from './entry-records.js';
import { closeConnection, connect, retrying, withFields } from './redis-connection.js';
import { RedisStateStore } from './redis-state-store.js';
import type { StreamUrl } from './redis-url.js';
import { shardKeys } from './shard-keys.js';
import { ShardLeases, type ShardCounts } from './shard-leases.js';
import { shardScript } from './shard-scripts.js';
import { entriesBatch, toEntry, type StreamEntry } from './stream-entry.js';
import { COMMIT_LIMIT, ShardCommits, ShardWork } from './shard-work.js';

export interface ShardRunOptions {
  /** The source: its stream name is the prefix of the shard streams. */
  url: StreamUrl;
  group: string;
  /** This member's name: its consumer name in every shard's group, and in the membership set. Unique per member. */
  member: string;
  shards: number;
  leaseMs: number;
  /** Streams on the source's server for output and error records. */
  outputsStream: string;
  errorsStream: string;
  readCount: number;
  blockMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  logger: StageLogger;
}

/** What a shard run counted. */
export interface ShardRunStats extends ShardCounts {
  read: number;
  /** Entries read back from the own pending list after taking a shard (or a reconnect). */
  recovered: number;
  /** Entries the group still had pending elsewhere, moved to this member on taking a shard. */
  claimed: number;
  acked: number;
  outputRecords: number;
  errorRecords: number;
  /** Entries processed for a shard lost meanwhile: dropped, never emitted (the new owner runs them). */
  dropped: number;
  /** Pending entries deleted from their stream: acknowledged, nothing to process. */
  deleted: number;
}

export class ShardRun {
  readonly stats: ShardRunStats;
  private readonly reader: Redis;
  private readonly commands: Redis;
  private readonly leaseConnection: Redis;
  private readonly leases: ShardLeases;
  private readonly store: RedisStateStore;
  private readonly logger: StageLogger;
  private readonly works = new Map<number, ShardWork>();
  private readonly offsets = new Map<number, { work: ShardWork; id: string }>();
  private nextOffset = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly commits: ShardCommits;
  private engine: ReturnType<typeof stageEngine> | null = null;

  constructor(private readonly options: ShardRunOptions) {
    const { url, member } = options;
    this.logger = withFields(options.logger, { source: url.stream, group: options.group, member, shards: options.shards });
    const common = { reconnectMinMs: options.reconnectMinMs, reconnectMaxMs: options.reconnectMaxMs, logger: this.logger };
    // A read whose reply was lost with the connection delivered entries only the pending lists still know.
    this.reader = connect(url, { ...common, name: `pystage-read-${member}`, onReconnect: () => this.recover() });
    this.commands = connect(url, { ...common, name: `pystage-${member}` });
    // Renewals never wait behind a big commit or a blocking read.
    this.leaseConnection = connect(url, { ...common, name: `pystage-lease-${member}` });
    this.store = new RedisStateStore(this.commands, {
      stream: url.stream, group: options.group, outputsStream: options.outputsStream, errorsStream: options.errorsStream, retry: common,
    });
    this.leases = new ShardLeases(this.leaseConnection, {
      take: (shard, lease) => this.take(shard, lease),
      lost: (shard) => this.lose(shard),
      drain: (shard) => this.drain(shard),
    }, { stream: url.stream, group: options.group, member, shards: options.shards, leaseMs: options.leaseMs, logger: this.logger });
    this.stats = Object.assign({ read: 0, recovered: 0, claimed: 0, acked: 0, outputRecords: 0, errorRecords: 0, dropped: 0, deleted: 0 }, this.leases.counts);
    this.commits = new ShardCommits(this.store, this.works, this.stats, (shard, lease) => this.leases.forget(shard, lease), () => this.stop());
  }

  /** Shards owned right now. */
  get owned(): number[] {
    return this.leases.owned;
  }

  /** Ownership counters, live (the summary, --progress, /metrics). */
  get counts(): ShardCounts {
    return this.leases.counts;
  }

  /** Run until `stop()`: then finish and commit what was read, hand every shard over, and resolve. */
  async run(stage: Stage): Promise<ShardRunStats> {
    const engine = this.engine = stageEngine(stage);
    if (engine.partitions !== this.options.shards) {
      throw new InvalidOptionError(`shard mode needs a stage of ${this.options.shards} partitions (one per shard); it has ${engine.partitions}`);
    }
    const records = new EntryRecords((offset) => this.offsets.get(offset)!.id);
    this.leases.start();
    try {
      for await (const ranges of engine.processLines(this.lines())) {
        for (const range of ranges) this.completed(range, records);
        const c = this.commits;
        while (c.committing !== null && c.queued >= COMMIT_LIMIT) await c.committing;
        if (c.failure !== null) throw c.failure;
      }
      while (this.commits.committing !== null) await this.commits.committing;
      if (this.commits.failure !== null) throw this.commits.failure;
      await this.leases.stop();
    } finally {
      this.leases.abandon();
    }
    return { ...this.stats, ...this.leases.counts };
  }

  /** Stop reading; entries in hand are finished and committed, then the shards are handed over. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    this.reader.disconnect();
  }

  async close(): Promise<void> {
    this.stop();
    this.leases.abandon();
    await Promise.all([closeConnection(this.commands), closeConnection(this.leaseConnection)]);
  }

  private recover(): void {
    for (const work of this.works.values()) work.pendingFrom = '0-0';
  }

  // ---- ownership (called by ShardLeases) ----

  private async take(shard: number, lease: string): Promise<void> {
    const engine = this.engine!;
    const work = new ShardWork(shard, lease);
    this.works.set(shard, work);
    const k = shardKeys(this.options.url.stream, this.options.group, shard);
    const current = () => this.works.get(shard) === work;
    await this.command('XGROUP CREATE', () => this.commands.xgroup('CREATE', k.stream, this.options.group, '0', 'MKSTREAM')).catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
    const { entries } = await this.store.load(shard);
    if (!current()) return;
    const snapshot: StateSnapshot = {};
    for (const e of entries) (snapshot[e.model] ??= []).push([e.key, e.text, e.expiresAt]);
    // Behind whatever still runs there for an earlier owner of this partition (dropped when it completes).
    await engine.loadState(shard, snapshot);
    // Everything the group still has pending on this stream, whoever held it, is ours now; read back in ID order.
    let cursor = '0-0';
    do {
      const reply = await this.command('XAUTOCLAIM', () => shardScript<[number, [Buffer, Buffer[], Buffer[]?]?]>(this.commands, 'claim',
        [k.lease, k.stream], [this.options.group, this.options.member, lease, cursor, 1000], true));
      if (!current()) return;
      if (reply[0] === 0) {
        this.leases.forget(shard, lease);
        return;
      }
      cursor = reply[1]![0].toString('latin1');
      this.stats.claimed += reply[1]![1].length;
    } while (cursor !== '0-0');
    work.reading = true;
    this.logger.info({ shard, stateEntries: entries.length }, 'shard taken over: state loaded, pending entries claimed');
    this.wake?.();
  }

  private lose(shard: number): void {
    const work = this.works.get(shard);
    if (work === undefined) return;
    this.works.delete(shard);
    this.commits.dropped(work);
  }

  private drain(shard: number): Promise<void> {
    const work = this.works.get(shard);
    if (work === undefined) return Promise.resolve();
    work.leaving = true;
    return work.whenDrained().then(() => {
      if (this.works.get(shard) === work) this.works.delete(shard);
    });
  }

  // ---- reading ----

  private async *lines(): AsyncGenerator<LineBatch> {
    while (!this.stopped) {
      const readable = [...this.works.values()].filter((w) => w.reading && !w.leaving);
      if (readable.length === 0) {
        await this.pause(Math.min(this.options.blockMs, 100));
        continue;
      }
      let replies: [number, unknown[]?][];
      try {
        replies = await this.read(readable);
      } catch (err) {
        if (this.stopped) return;
        throw err;
      }
      let any = false;
      for (let s = 0; s < readable.length; s++) {
        const work = readable[s]!;
        const reply = replies[s]!;
        if (this.works.get(work.shard) !== work || work.leaving) continue;
        if (reply[0] === 0) {
          this.leases.forget(work.shard, work.lease);
          continue;
        }
        const entries = (reply[1] ?? []).map(toEntry);
        const recovering = work.pendingFrom !== null;
        if (recovering) work.pendingFrom = entries.length === 0 ? null : entries[entries.length - 1]!.id;
        const batch = this.inHand(work, entries, recovering);
        if (batch !== null) {
          any = true;
          yield batch;
        } else if (entries.length > 0) any = true;
      }
      if (!any && !this.stopped) await this.waitForEntries(readable);
    }
  }

  /** The entries not in hand yet, as one LineBatch for the shard's partition; deleted ones are queued to be acknowledged. */
  private inHand(work: ShardWork, entries: StreamEntry[], recovering: boolean): LineBatch | null {
    const fresh: StreamEntry[] = [];
    const gone: string[] = [];
    for (const entry of entries) {
      if (work.inHand.has(entry.id)) continue;
      work.inHand.add(entry.id);
      if (entry.data === null) gone.push(entry.id);
      else fresh.push(entry);
    }
    if (recovering) this.stats.recovered += fresh.length;
    if (gone.length > 0) {
      this.stats.deleted += gone.length;
      this.logger.warn({ shard: work.shard, ids: gone }, 'pending entries were deleted from the stream before they were processed; acknowledging them');
      work.outstanding += gone.length;
      this.commits.queue(work, { outputs: [], errors: [], done: gone, changes: [] });
    }
    if (fresh.length === 0) return null;
    this.stats.read += fresh.length;
    work.outstanding += fresh.length;
    for (const entry of fresh) this.offsets.set(this.nextOffset++, { work, id: entry.id });
    return entriesBatch(fresh, work.shard);
  }

  /** One fenced read over every readable shard: own pending entries first, new ones after. */
  private read(works: ShardWork[]): Promise<[number, unknown[]?][]> {
    const keys: string[] = [];
    const args: (string | number)[] = [this.options.group, this.options.member, this.options.readCount];
    for (const w of works) {
      const k = shardKeys(this.options.url.stream, this.options.group, w.shard);
      keys.push(k.lease, k.stream);
      args.push(w.lease, w.pendingFrom ?? '>');
    }
    return retrying(this.reader, 'reading the shards', () => shardScript<[number, unknown[]?][]>(this.reader, 'read', keys, args, true),
      { ...this.options, logger: this.logger });
  }

  /** Nothing to read: wait for an entry on any readable shard (a short blocking XREAD), a new shard, or the stop. */
  private async waitForEntries(works: ShardWork[]): Promise<void> {
    const streams = works.map((w) => shardKeys(this.options.url.stream, this.options.group, w.shard).stream);
    const block = Math.max(10, Math.min(this.options.blockMs, Math.floor(this.options.leaseMs / 10)));
    await this.reader.xread('COUNT', 1, 'BLOCK', block, 'STREAMS', ...streams, ...streams.map(() => '$')).catch(() => {});
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  // ---- completing and committing ----

  private completed(range: BatchRange, records: EntryRecords): void {
    const { batch, from, to } = range;
    const first = this.offsets.get(batch.offsets[from]!)!;
    const work = first.work;
    if (this.works.get(work.shard) !== work) {
      for (let i = from; i < to; i++) this.offsets.delete(batch.offsets[i]!);
      this.stats.dropped += to - from;
      return;
    }
    records.add(range);
    for (let i = from; i < to; i++) this.offsets.delete(batch.offsets[i]!);
    const turn = records.take(Number.MAX_SAFE_INTEGER)!;
    // A partition's batch carries its state changes (a batch of messages rejected on this thread has none).
    this.commits.queue(work, { ...turn, changes: batch.partition === null ? [] : batch.outcomes?.state ?? [] });
  }

  private command<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retrying(this.commands, what, attempt, { ...this.options, logger: this.logger });
  }
}

