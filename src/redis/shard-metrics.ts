/** Shard mode's Prometheus metrics: shards owned, and ownership changes by kind. Read at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ShardCounts } from './shard-leases.js';

export function registerShardMetrics(registry: Registry, run: { owned: number[]; counts: ShardCounts }): void {
  const registers = [registry];
  new Gauge({ name: 'pystage_shards_owned', help: 'Shards this member owns (holds the lease of) right now.', registers, collect() { this.set(run.owned.length); } });
  new Counter({
    name: 'pystage_shard_ownership_changes_total',
    help: 'Shard ownership changes of this member: taken (a new lease), lost (expired or refused, work in hand dropped), rebalanced (handed over to balance the members), handed-over (at stop).',
    labelNames: ['change'], registers,
    collect() {
      this.reset();
      this.inc({ change: 'taken' }, run.counts.takenOver);
      this.inc({ change: 'lost' }, run.counts.leasesLost);
      this.inc({ change: 'rebalanced' }, run.counts.rebalances);
      this.inc({ change: 'handed-over' }, run.counts.handedOver);
    },
  });
}
