/**
 * Which shards this member owns. Every `tick` (a fifth of the lease) the member renews its
 * heartbeat in the membership set and the leases it holds, then balances: with the live members
 * sorted by name, member k of M targets ⌊N/M⌋ shards, plus one if k < N mod M, so every member
 * computes the same split. Over its target it hands shards over (the runner first commits what it
 * took from them, then the lease is deleted); under it, it takes free leases (a new fencing token
 * each time, from the shard's counter). Takers never take a lease that exists: they wait for its
 * owner to hand it over or for it to expire.
 *
 * A lease counts as held only until `sentAt + leaseMs` of the last renewal that succeeded: a member
 * cut off from Redis, or paused, gives its shards up locally when that passes, whatever Redis says
 * later (the new owner may have started), and a watchdog timer checks it even while a renewal hangs.
 */
import type { Redis } from 'ioredis';
import type { StageLogger } from '../telemetry/stage-logger.js';
import { leaseValue, membersKey, shardKeys } from './shard-keys.js';
import { shardScript } from './shard-scripts.js';

/** What the member's runner does when ownership changes. */
export interface ShardOwner {
  /** The shard is ours under `lease`: load its state, take over its pending entries, start reading it. */
  take(shard: number, lease: string): Promise<void>;
  /** The lease was lost (expired, or found to be another's): drop the shard's work in hand. */
  lost(shard: number): void;
  /** Stop reading the shard and resolve once everything taken from it is committed. */
  drain(shard: number): Promise<void>;
}

export interface ShardLeaseOptions {
  stream: string;
  group: string;
  member: string;
  shards: number;
  leaseMs: number;
  logger: StageLogger;
}

/** Counters of ownership since the member started. */
export interface ShardCounts {
  /** Shards taken (each new lease counts). */
  takenOver: number;
  /** Leases lost without handing over (expired, or refused). */
  leasesLost: number;
  /** Shards handed over to balance the members (not counting the hand-over at stop). */
  rebalances: number;
  /** Shards handed over at stop. */
  handedOver: number;
}

interface Held {
  lease: string;
  /** The lease is ours until then (local clock), unless renewed. */
  validUntil: number;
  leaving: boolean;
}

export class ShardLeases {
  readonly counts: ShardCounts = { takenOver: 0, leasesLost: 0, rebalances: 0, handedOver: 0 };
  private readonly held = new Map<number, Held>();
  private readonly handing = new Map<number, Promise<void>>();
  private members: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  /** No taking or balancing any more (stopping): renewals go on until every shard is handed over. */
  private stopping = false;
  private readonly tickMs: number;

  constructor(private readonly redis: Redis, private readonly owner: ShardOwner, private readonly options: ShardLeaseOptions) {
    this.tickMs = Math.max(20, Math.floor(options.leaseMs / 5));
  }

  /** Shards owned right now (taken, not lost or handed over). */
  get owned(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** The live members as of the last heartbeat, sorted by name. */
  get liveMembers(): string[] {
    return this.members;
  }

  /** The lease a shard is held with, or null. */
  leaseOf(shard: number): string | null {
    return this.held.get(shard)?.lease ?? null;
  }

  start(): void {
    const loop = () => {
      this.ticking = this.tick().catch((err: unknown) => {
        this.options.logger.warn({ err: (err as Error).message }, 'a lease round failed; trying again next round');
      }).finally(() => {
        this.ticking = null;
        if (this.timer !== null) this.timer = setTimeout(loop, this.tickMs);
      });
    };
    this.timer = setTimeout(loop, 0);
    this.watchdog = setInterval(() => this.expire(), this.tickMs);
  }

  /**
   * A shard's lease is gone (expired locally, or a refused commit or read under `lease`): forget it. A
   * refusal under an older lease of a shard held again since says nothing about the new lease.
   */
  forget(shard: number, lease?: string): void {
    const h = this.held.get(shard);
    if (h === undefined || (lease !== undefined && h.lease !== lease)) return;
    this.held.delete(shard);
    this.counts.leasesLost++;
    this.options.logger.warn({ shard }, 'lost the lease of a shard; its work in hand is dropped');
    this.owner.lost(shard);
  }

  /** Local expiry: leases not renewed in time are given up, whether or not Redis still has them. */
  private expire(): void {
    const now = Date.now();
    for (const [shard, h] of this.held) if (now >= h.validUntil) this.forget(shard);
  }

  private async tick(): Promise<void> {
    const { stream, group, member, leaseMs, shards } = this.options;
    const sentAt = Date.now();
    this.members = ((await shardScript<string[]>(this.redis, 'heartbeat', [membersKey(stream, group)], [member, leaseMs, 0])) ?? []).sort();
    await this.renew(sentAt);
    this.expire();
    if (this.stopping) return;
    const index = this.members.indexOf(member);
    if (index < 0) return;
    const m = this.members.length;
    const target = Math.floor(shards / m) + (index < shards % m ? 1 : 0);
    const staying = [...this.held].filter(([, h]) => !h.leaving);
    if (staying.length > target) {
      // Hand over the highest shards first: any choice works, a fixed one makes runs easier to read.
      for (const [shard] of staying.sort((x, y) => y[0] - x[0]).slice(0, staying.length - target)) {
        this.handOver(shard, 'rebalance').catch((err: unknown) => this.options.logger.warn({ shard, err: (err as Error).message }, 'handing a shard over failed; its lease will expire'));
      }
      return;
    }
    // Start looking at this member's share of the ring, so that joiners rarely race for the same lease.
    const start = Math.floor((index * shards) / m);
    for (let i = 0; i < shards && this.held.size < target; i++) {
      const shard = (start + i) % shards;
      if (!this.held.has(shard)) await this.acquire(shard);
    }
  }

  private async renew(sentAt: number): Promise<void> {
    const list = [...this.held];
    if (list.length === 0) return;
    const keys = list.map(([shard]) => shardKeys(this.options.stream, this.options.group, shard).lease);
    const renewed = await shardScript<number[]>(this.redis, 'renew', keys, [this.options.leaseMs, ...list.map(([, h]) => h.lease)]);
    list.forEach(([shard, h], i) => {
      // Only if still held with the same lease: a reply that comes late must not revive a shard lost meanwhile.
      if (this.held.get(shard) !== h) return;
      if (renewed[i] === 1) h.validUntil = sentAt + this.options.leaseMs;
      else this.forget(shard);
    });
  }

  private async acquire(shard: number): Promise<void> {
    const { stream, group, member, leaseMs } = this.options;
    const k = shardKeys(stream, group, shard);
    const sentAt = Date.now();
    const token = await shardScript<number>(this.redis, 'acquire', [k.lease, k.token], [member, leaseMs]);
    if (token === 0) return;
    const h: Held = { lease: leaseValue(member, token), validUntil: sentAt + leaseMs, leaving: false };
    // Stopping meanwhile (stop() waits for this round): give it back at once rather than let it expire.
    if (this.stopping) {
      await this.release(shard, h.lease);
      return;
    }
    // The reply came too late to trust the lease: it expires by itself.
    if (Date.now() >= sentAt + leaseMs) return;
    this.held.set(shard, h);
    this.counts.takenOver++;
    this.options.logger.info({ shard, token }, 'took a shard');
    // Not awaited: loading a big state must not hold up the renewals of the other leases.
    void this.takeOver(shard, h);
  }

  private async takeOver(shard: number, h: Held): Promise<void> {
    try {
      await this.owner.take(shard, h.lease);
    } catch (err) {
      this.options.logger.warn({ shard, err: (err as Error).message }, 'taking over a shard failed; handing it back');
      if (this.held.get(shard) === h) {
        this.held.delete(shard);
        this.owner.lost(shard);
        await this.release(shard, h.lease).catch(() => {});
      }
    }
  }

  /** Commit what was taken from the shard, then delete its lease, so a taker need not wait for it to expire. */
  private handOver(shard: number, why: 'rebalance' | 'stop'): Promise<void> {
    // One hand-over per shard: stop() waits for one that a rebalance started.
    let handing = this.handing.get(shard);
    if (handing === undefined) {
      handing = this.handOverOnce(shard, why).finally(() => this.handing.delete(shard));
      this.handing.set(shard, handing);
    }
    return handing;
  }

  private async handOverOnce(shard: number, why: 'rebalance' | 'stop'): Promise<void> {
    const h = this.held.get(shard);
    if (h === undefined) return;
    h.leaving = true;
    await this.owner.drain(shard);
    if (this.held.get(shard) !== h) return; // lost while draining: nothing to hand over
    this.held.delete(shard);
    await this.release(shard, h.lease);
    if (why === 'rebalance') this.counts.rebalances++;
    else this.counts.handedOver++;
    this.options.logger.info({ shard, why }, 'handed a shard over');
  }

  private release(shard: number, lease: string): Promise<number> {
    return shardScript<number>(this.redis, 'release', [shardKeys(this.options.stream, this.options.group, shard).lease], [lease]);
  }

  /** Take no more shards; hand over every one held (each drained first); leave the membership set. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.held.keys()].map((shard) => this.handOver(shard, 'stop').catch((err: unknown) => {
      this.options.logger.warn({ shard, err: (err as Error).message }, 'handing a shard over failed; its lease will expire');
    })));
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    await this.ticking;
    await shardScript(this.redis, 'heartbeat', [membersKey(this.options.stream, this.options.group)], [this.options.member, this.options.leaseMs, 1]).catch(() => {});
  }

  /** Stop the timers without handing anything over (the run failed). */
  abandon(): void {
    this.stopping = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.watchdog !== null) clearInterval(this.watchdog);
  }
}
