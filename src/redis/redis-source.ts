/**
 * Reads a stream as one consumer of a consumer group, at least once.
 *
 * Order of reading: first this consumer's own pending entries (delivered before a crash or a
 * restart and never acknowledged), then new entries (`>`), and every `claimInterval` the
 * entries other consumers left idle longer than `claimIdleMs` (XAUTOCLAIM), so the survivors
 * of a group finish a dead member's work. Nothing is acknowledged here until `ack` is called
 * with IDs whose every output is stored.
 *
 * Connections: blocking reads get a connection of their own (a blocked connection can do
 * nothing else); acks and claims go over a second one. When either comes back after a drop,
 * the reader re-reads its own pending list before anything new: a read whose reply was lost
 * with the connection delivered entries that only the pending list still knows, and reading
 * them first keeps ID order. Entries already in hand (`inFlight`) are never handed out twice.
 */
import type { Redis } from 'ioredis';
import { createLogger } from '../telemetry/logger.js';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { closeConnection, connect, isReplyError, retrying, withFields } from './redis-connection.js';
import { RedisStreamError } from '../api/errors.js';
import { resolveRedisSourceOptions, type RedisSourceOptions, type ResolvedRedisSourceOptions } from './redis-options.js';
import { parseStreamUrl, type StreamUrl } from './redis-url.js';
import { entryMessage, toEntry, type StreamEntry } from './stream-entry.js';

/** Counters of a source since it started. */
export interface RedisSourceStats {
  /** Entries taken in (each delivery counts): `in`, as in the stage's stats and the CLI's summary. */
  in: number;
  /** Of those, taken over from other consumers (XAUTOCLAIM) or own pending entries read back. */
  claimed: number;
  recovered: number;
  acked: number;
  /** Pending entries that had been deleted from the stream: acknowledged, nothing to process. */
  deleted: number;
}

/** An entry of the API's iteration: its ID and its message (a parsed object). */
export interface RedisMessage {
  id: string;
  message: unknown;
}

/** Open a consumer-group reader on `url` (`redis://HOST:PORT[/DB]/STREAM`). Connects on first use. */
export function redisSource(url: string, options: RedisSourceOptions & { logger?: StageLogger }): RedisSource {
  return new RedisSource(parseStreamUrl(url, 'the source'), resolveRedisSourceOptions(options), options.logger);
}

/** A consumer of a stream's consumer group; iterate it (API) or call `next()` for batches. */
export class RedisSource implements AsyncIterable<RedisMessage> {
  readonly stats: RedisSourceStats = { in: 0, claimed: 0, recovered: 0, acked: 0, deleted: 0 };
  /** The connection for acks, claims and (when on the same server) the sink's writes. */
  readonly commands: Redis;
  private readonly reader: Redis;
  readonly logger: StageLogger;
  private readonly inFlight = new Set<string>();
  private started: Promise<void> | null = null;
  private stopped = false;
  /** Resolves when `stop` is called: a start or claim waiting for an unreachable Redis gives up then. */
  private readonly stopping: Promise<null>;
  private onStop: () => void = () => {};
  private closed = false;
  /** Read own pending entries from this ID before anything new; null when there is nothing to recover. */
  private pendingFrom: string | null = '0-0';
  /** Bumped on every reconnect, so a pending read that raced one does not move the cursor past what it missed. */
  private recoveries = 0;
  private claimCursor = '0-0';
  private nextClaimAt = 0;
  private readonly claimInterval: number;

  /** @internal Use redisSource. */
  constructor(readonly url: StreamUrl, readonly options: ResolvedRedisSourceOptions, logger?: StageLogger) {
    this.logger = withFields(logger ?? createLogger('warn'), { source: url.stream, group: options.group, consumer: options.consumer });
    const recover = () => {
      this.pendingFrom = '0-0';
      this.recoveries++;
    };
    const common = { reconnectMinMs: options.reconnectMinMs, reconnectMaxMs: options.reconnectMaxMs, logger: this.logger, onReconnect: recover };
    this.reader = connect(url, { ...common, name: `pystage-read-${options.consumer}` });
    this.commands = connect(url, { ...common, name: `pystage-${options.consumer}` });
    this.stopping = new Promise<null>((resolve) => { this.onStop = () => resolve(null); });
    // Often enough that an entry waits at most about 1.5 × claimIdleMs; a sweep is one cheap command.
    this.claimInterval = Math.max(50, Math.min(Math.floor(options.claimIdleMs / 2), 5_000));
  }

  get stream(): string {
    return this.url.stream;
  }

  /** Entries handed out and not yet acknowledged. */
  get unacked(): number {
    return this.inFlight.size;
  }

  /** Create the group if missing; with `exclusive`, take over every pending entry of the group. */
  start(): Promise<void> {
    return (this.started ??= this.setUp());
  }

  private async setUp(): Promise<void> {
    await this.createGroup();
    if (this.options.exclusive) {
      // The only consumer: everything pending is ours now, and our pending list is read back in ID order.
      let cursor = '0-0';
      do {
        const reply = await this.command('XAUTOCLAIM', () => this.commands.callBuffer('XAUTOCLAIM', this.stream, this.options.group, this.options.consumer, 0, cursor, 'COUNT', 1000, 'JUSTID')) as [Buffer, Buffer[]];
        cursor = reply[0].toString('latin1');
      } while (cursor !== '0-0');
    }
    this.nextClaimAt = this.options.exclusive ? Infinity : 0;
  }

  private async createGroup(): Promise<void> {
    try {
      await this.command('XGROUP CREATE', () => this.commands.xgroup('CREATE', this.stream, this.options.group, '0', 'MKSTREAM'));
      this.logger.info({}, 'created the consumer group at ID 0');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /**
   * The next entries to process, or null once stopped. Waits (blocking read) when there is nothing.
   * Every entry returned stays pending in Redis until `ack` is called with its ID.
   */
  async next(): Promise<StreamEntry[] | null> {
    // Nothing is in hand before the start: stopping while Redis cannot be reached just stops.
    const starting = this.start().then(() => true);
    starting.catch(() => {}); // when stopping wins the race, a later failure has no one to tell
    if (await Promise.race([starting, this.stopping]) === null) return null;
    while (!this.stopped) {
      try {
        if (this.pendingFrom !== null) {
          const from = this.pendingFrom;
          const generation = this.recoveries;
          const entries = await this.read(from, 0);
          if (this.stopped) return null;
          if (entries === null) continue;
          if (generation === this.recoveries) this.pendingFrom = entries.length === 0 ? null : entries[entries.length - 1]!.id;
          const fresh = await this.countDeliveries(await this.takeNew(entries));
          this.stats.recovered += fresh.length;
          if (fresh.length > 0) return fresh;
          continue;
        }
        if (Date.now() >= this.nextClaimAt) {
          const claimed = await this.claim();
          if (claimed === null) return null;
          if (claimed.length > 0) return claimed;
          continue;
        }
        const block = Math.max(1, Math.min(this.options.blockMs, this.nextClaimAt - Date.now()));
        const entries = await this.read('>', block);
        if (this.stopped) return null;
        if (entries === null || entries.length === 0) continue;
        if (this.pendingFrom !== null) {
          // The connection came back while this read was out: the pending list, read first, holds these too.
          continue;
        }
        return await this.takeNew(entries);
      } catch (err) {
        if (this.stopped) return null;
        if (/NOGROUP/.test((err as Error).message)) {
          // The stream or the group went away (deleted, or a restarted Redis that kept no data).
          this.logger.warn({}, 'the stream or its consumer group is gone; creating it again at ID 0');
          await this.createGroup();
          this.pendingFrom = '0-0';
          continue;
        }
        throw err;
      }
    }
    return null;
  }

  /** One XREADGROUP on the reading connection: `>` for new entries, an ID for own pending ones after it. */
  private async read(from: string, block: number): Promise<StreamEntry[] | null> {
    const args: (string | number)[] = ['GROUP', this.options.group, this.options.consumer, 'COUNT', this.options.readCount];
    if (from === '>') args.push('BLOCK', block);
    args.push('STREAMS', this.stream, from);
    let reply: unknown;
    try {
      reply = await this.reader.callBuffer('XREADGROUP', ...args);
    } catch (err) {
      if (this.stopped) return null;
      if (isReplyError(err)) throw err;
      // The connection failed under the read and ioredis gave it up: the pending list holds whatever it delivered.
      this.logger.warn({ err: (err as Error).message }, 'a read failed; re-reading own pending entries');
      this.pendingFrom = '0-0';
      this.recoveries++;
      // Never a busy loop against a connection that keeps failing.
      await new Promise((resolve) => setTimeout(resolve, this.options.reconnectMinMs));
      return null;
    }
    if (reply === null) return [];
    const streams = reply as [Buffer, unknown[]][];
    return streams[0]![1].map(toEntry);
  }

  /** One step of the claim sweep: entries idle longer than claimIdleMs in anyone's pending list become ours. */
  private async claim(): Promise<StreamEntry[] | null> {
    const claiming = this.command('XAUTOCLAIM', () => this.commands.callBuffer('XAUTOCLAIM', this.stream, this.options.group, this.options.consumer,
      this.options.claimIdleMs, this.claimCursor, 'COUNT', this.options.readCount)) as Promise<[Buffer, unknown[], Buffer[]?]>;
    // Stopping while Redis is away: whatever this claim takes over stays in our pending list for the next start.
    const reply = await Promise.race([claiming, this.stopping]);
    if (reply === null) {
      claiming.catch(() => {});
      return null;
    }
    this.claimCursor = reply[0].toString('latin1');
    if (this.claimCursor === '0-0') this.nextClaimAt = Date.now() + this.claimInterval;
    const deleted = reply[2]?.length ?? 0;
    if (deleted > 0) {
      // Redis drops those from the pending list itself: their messages are gone.
      this.stats.deleted += deleted;
      this.logger.warn({ ids: reply[2]!.map((b) => b.toString('latin1')) }, 'pending entries were deleted from the stream before they were processed');
    }
    // Our own entries in hand can be idle that long too (a slow stage): they are not handed out twice.
    const claimed = await this.countDeliveries(await this.takeNew(reply[1].map(toEntry)));
    if (claimed.length > 0) this.logger.info({ count: claimed.length }, 'claimed idle entries from the group');
    this.stats.claimed += claimed.length;
    return claimed;
  }

  /** Entries not already in hand; deleted ones are acknowledged at once (there is nothing to process). */
  private async takeNew(entries: StreamEntry[]): Promise<StreamEntry[]> {
    const fresh: StreamEntry[] = [];
    const gone: string[] = [];
    for (const entry of entries) {
      if (this.inFlight.has(entry.id)) continue;
      if (entry.data === null) {
        gone.push(entry.id);
        continue;
      }
      this.inFlight.add(entry.id);
      fresh.push(entry);
    }
    if (gone.length > 0) {
      this.stats.deleted += gone.length;
      this.logger.warn({ ids: gone }, 'pending entries were deleted from the stream before they were processed; acknowledging them');
      for (const id of gone) this.inFlight.add(id);
      await this.ack(gone);
    }
    this.stats.in += fresh.length;
    return fresh;
  }

  /** Delivery counts of entries read back or claimed (XPENDING over their ID range, this consumer's). */
  private async countDeliveries(entries: StreamEntry[]): Promise<StreamEntry[]> {
    if (entries.length === 0) return entries;
    const rows = await this.command('XPENDING', () => this.commands.xpending(this.stream, this.options.group, entries[0]!.id,
      entries[entries.length - 1]!.id, entries.length + this.inFlight.size, this.options.consumer)) as [string, string, number, number][];
    const counts = new Map(rows.map((r) => [r[0], r[3]]));
    for (const entry of entries) entry.deliveries = counts.get(entry.id) ?? entry.deliveries;
    return entries;
  }

  /** Acknowledge entries whose every output is stored (XACK, retried across reconnects). */
  async ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.command('XACK', () => this.commands.xack(this.stream, this.options.group, ...ids));
    this.acked(ids);
  }

  /** @internal The entries were acknowledged by a transaction of the caller's. */
  acked(ids: string[]): void {
    for (const id of ids) this.inFlight.delete(id);
    this.stats.acked += ids.length;
  }

  /** Stop reading: a blocking read in progress is abandoned (what it delivered stays pending, for the next start or a claim). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onStop();
    this.reader.disconnect();
  }

  /** Stop and close both connections (after the last ack). */
  async close(): Promise<void> {
    this.stop();
    if (this.closed) return;
    this.closed = true;
    await closeConnection(this.commands);
  }

  /** The API's iteration: one entry at a time with its message parsed; call `ack(ids)` once its outputs are stored. */
  async *[Symbol.asyncIterator](): AsyncGenerator<RedisMessage> {
    for (;;) {
      const entries = await this.next();
      if (entries === null) return;
      for (const entry of entries) yield { id: entry.id, message: entryMessage(entry) };
    }
  }

  private command<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new RedisStreamError(`${what}: the source is closed`));
    return retrying(this.commands, `${what} on ${this.stream}`, attempt, { logger: this.logger, ...this.options });
  }
}
