/**
 * Prometheus metrics of what models reach beyond their messages: each partition's state size, the
 * shared cache, and host requests. Registered on the stage's metrics registry, read on scrape only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HostRequestStats } from './host-services.js';
import type { CacheStats } from './shared-cache.js';

/** What these metrics read from the stage when scraped. */
export interface ContextMetricsSource {
  states(): { partition: number; bytes: number; keys: number }[];
  cache(): CacheStats;
  hostRequests(): HostRequestStats;
}

/** Add the state, cache and host request metrics to `registry`. */
export function registerContextMetrics(registry: Registry, source: ContextMetricsSource): void {
  const registers = [registry];
  new Gauge({
    name: 'pystage_state_bytes', help: 'Bytes of each partition\'s self.context.state (as counted against maxStateBytes), as of its last emitted output.',
    labelNames: ['partition'], registers,
    collect() { for (const s of source.states()) this.set({ partition: s.partition }, s.bytes); },
  });
  new Gauge({
    name: 'pystage_state_keys', help: 'Keys in each partition\'s self.context.state (all models).', labelNames: ['partition'], registers,
    collect() { for (const s of source.states()) this.set({ partition: s.partition }, s.keys); },
  });
  new Gauge({ name: 'pystage_cache_entries', help: 'Entries in the shared cache.', registers, collect() { this.set(source.cache().entries); } });
  new Gauge({ name: 'pystage_cache_bytes', help: 'Bytes of keys and JSON values in the shared cache.', registers, collect() { this.set(source.cache().bytes); } });
  new Counter({
    name: 'pystage_cache_evictions_total', help: 'Cache entries evicted (least recently used) to stay within cacheMaxEntries and cacheMaxBytes.', registers,
    collect() { this.reset(); this.inc(source.cache().evictions); },
  });
  new Counter({
    name: 'pystage_host_requests_total', help: 'Host requests from models (handler calls and cache operations), by outcome.', labelNames: ['outcome'], registers,
    collect() {
      this.reset();
      const h = source.hostRequests();
      this.inc({ outcome: 'answered' }, h.calls + h.cacheOps - h.failed);
      this.inc({ outcome: 'failed' }, h.failed);
    },
  });
}
