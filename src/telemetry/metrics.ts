/**
 * The stage's Prometheus metrics (prom-client, a registry of the stage's own) and the HTTP server
 * that serves them (on loopback unless metricsHost says otherwise). Off the hot path: outcomes are tallied once per completed batch,
 * and everything the stage already counts (messages in, restarts, queue depths, server memory) is
 * read only when scraped.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Batch } from '../engine/batch.js';
import type { OutcomeTally } from '../engine/outcome-tally.js';
import { InvalidOptionError } from '../api/errors.js';
import type { RecoveryCounts } from '../engine/worker-protocol.js';

/** What the metrics read from the stage at scrape time. */
export interface MetricsSource {
  messagesIn(): number;
  partitions(): { partition: number; queued: number; inFlight: number; serverPid: number | null; recovery: RecoveryCounts; threadReplacements: number }[];
}

/** The stage's metrics; `observeBatch` once per completed batch, the rest is collected on scrape. */
export class StageMetrics {
  readonly registry = new Registry();
  private readonly outputs: Counter<'model'>;
  private readonly noOutputs: Counter<'model'>;
  private readonly errors: Counter<'model' | 'code'>;
  private readonly batchSize: Histogram;
  private readonly latency: Histogram;
  private server: Server | null = null;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    new Counter({
      name: 'pystage_messages_in_total', help: 'Messages read (CLI lines or API values).', registers,
      collect() { this.reset(); this.inc(source.messagesIn()); },
    });
    this.outputs = new Counter({ name: 'pystage_outputs_total', help: 'Model outputs, by model.', labelNames: ['model'], registers });
    this.noOutputs = new Counter({ name: 'pystage_no_output_total', help: 'Model calls that returned None, by model.', labelNames: ['model'], registers });
    this.errors = new Counter({
      name: 'pystage_errors_total', help: 'Errors by model ("" before any model ran) and error code.', labelNames: ['model', 'code'], registers,
    });
    // Restarts (a new server) and reconnects (the same server, a new connection), each by partition and cause.
    const byCause = (name: string, help: string, causes: (p: ReturnType<MetricsSource['partitions']>[number]) => Record<string, number>) => new Counter({
      name, help, labelNames: ['partition', 'cause'], registers,
      collect() {
        this.reset();
        for (const p of source.partitions()) {
          for (const [cause, n] of Object.entries(causes(p))) if (n > 0) this.inc({ partition: p.partition, cause }, n);
        }
      },
    });
    byCause('pystage_restarts_total', 'Python server restarts by partition and cause (the way its connection broke, or worker-thread).',
      (p) => ({ ...p.recovery.restartCauses, 'worker-thread': p.threadReplacements }));
    byCause('pystage_reconnects_total', 'New connections to a Python server that was still alive, by partition and cause (the way the connection broke).',
      (p) => p.recovery.reconnectCauses);
    new Counter({
      name: 'pystage_reexecutions_total', help: 'Messages sent to a server again because the one running them broke (a model may run twice for them).',
      labelNames: ['partition'], registers,
      collect() {
        this.reset();
        for (const p of source.partitions()) this.inc({ partition: p.partition }, p.recovery.reexecuted);
      },
    });
    this.batchSize = new Histogram({
      name: 'pystage_batch_size', help: 'Messages per batch sent to a partition.', registers,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    });
    this.latency = new Histogram({
      name: 'pystage_message_latency_seconds',
      help: 'From a message being read to its outcome, measured once per batch for its oldest message (an upper bound for the rest).',
      registers, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    new Gauge({
      name: 'pystage_in_flight_messages', help: 'Messages sent to a partition\'s worker and server, not answered yet.', labelNames: ['partition'], registers,
      collect() { for (const p of source.partitions()) this.set({ partition: p.partition }, p.inFlight); },
    });
    new Gauge({
      name: 'pystage_queued_messages', help: 'Messages read and waiting for their batch to be sent, by partition.', labelNames: ['partition'], registers,
      collect() { for (const p of source.partitions()) this.set({ partition: p.partition }, p.queued); },
    });
    new Gauge({
      name: 'pystage_server_rss_bytes', help: 'Resident memory of each partition\'s Python server (Linux /proc; absent elsewhere).', labelNames: ['partition'], registers,
      collect() {
        this.reset();
        for (const p of source.partitions()) {
          const rss = p.serverPid === null ? null : residentBytes(p.serverPid);
          if (rss !== null) this.set({ partition: p.partition }, rss);
        }
      },
    });
  }

  /** A completed batch, with its outcomes counted (OutcomeTally): one counter update per model and outcome. */
  observeBatch(batch: Batch, tally: OutcomeTally, now: number): void {
    if (batch.partition !== null) this.batchSize.observe(batch.count);
    this.latency.observe((now - batch.createdAt) / 1000);
    for (const [model, t] of tally.models) {
      if (t.outputs > 0) this.outputs.inc({ model }, t.outputs);
      if (t.noOutputs > 0) this.noOutputs.inc({ model }, t.noOutputs);
      for (const [code, n] of t.errors) this.errors.inc({ model, code }, n);
    }
  }

  /** Serve GET /metrics on host:port (0: a free port); resolves with the URL. */
  async listen(port: number, host: string): Promise<string> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('pystage serves /metrics only\n');
        return;
      }
      this.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new InvalidOptionError(
        err.code === 'EADDRINUSE'
          ? `metrics port ${port} on ${host} is in use: pick another --metrics-port / metricsPort (0 picks a free one)`
          : `cannot serve metrics on ${host}:${port} (--metrics-host / metricsHost must be an address of this machine): ${err.message}`,
      )));
      server.listen(port, host, () => resolve());
    });
    // Scrapes never keep the process alive.
    server.unref();
    this.server = server;
    const url = new URL('http://localhost/metrics');
    url.hostname = host.includes(':') ? `[${host}]` : host;
    url.port = String((server.address() as AddressInfo).port);
    return url.href;
  }

  /** Stop serving. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** What the durable state's metrics read when scraped (--state-dir). */
export interface StateStoreMetricsSource {
  restoreSeconds: number;
  restoredKeys: number;
  checkpoints(): number;
}

/** Restore time, keys restored and checkpoints committed, on the stage's registry. */
export function registerStateStoreMetrics(registry: Registry, source: StateStoreMetricsSource): void {
  const registers = [registry];
  new Gauge({
    name: 'pystage_state_restore_seconds', help: 'How long restoring the partitions\' state from --state-dir took at start.', registers,
    collect() { this.set(source.restoreSeconds); },
  });
  new Gauge({ name: 'pystage_state_restored_keys', help: 'State keys restored from --state-dir at start.', registers, collect() { this.set(source.restoredKeys); } });
  new Counter({
    name: 'pystage_checkpoints_total', help: 'Checkpoints committed to --state-dir (each one store transaction).', registers,
    collect() { this.reset(); this.inc(source.checkpoints()); },
  });
}

/** VmRSS of a process in bytes, or null where /proc is not available or the process is gone. */
function residentBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
