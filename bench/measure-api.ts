/**
 * The embedded API measured in-process (inside a child node process, see child-entry.ts):
 * throughput at saturation, and push → output latency at a fixed offered load or at saturation.
 */
import { createStage, type Stage } from '../src/index.js';
import { messages } from './input-file.js';
import { summarize, type LatencySummary } from './latency-stats.js';
import { PacedSource } from './paced-source.js';
import { modelFile, modelName, python } from './paths.js';

/** What an API throughput run reports. */
export interface ApiThroughputResult {
  partitions: number;
  messages: number;
  outputs: number;
  errors: number;
  /** First message offered → last output consumed (startup and close excluded). */
  seconds: number;
}

/** What an API latency run reports. */
export interface ApiLatencyResult {
  partitions: number;
  messages: number;
  outputs: number;
  errors: number;
  /** Messages per second actually offered. */
  offeredRate: number;
  /** Latency of every message after the warm-up, ms. */
  latency: LatencySummary;
}

/** A stage running the benchmark model; `partitions: null` takes the stage's default. */
export function benchStage(partitions: number | null, logLevel = 'warn'): Promise<Stage> {
  return createStage({ models: [{ name: modelName, file: modelFile }], partitions: partitions ?? undefined, python: python(), logLevel });
}

/** Push `count` messages as fast as the stage takes them; count every output. */
export async function apiThroughput(count: number, partitions: number | null): Promise<ApiThroughputResult> {
  const stage = await benchStage(partitions);
  let outputs = 0;
  let errors = 0;
  const started = performance.now();
  for await (const record of stage.process(messages(count))) {
    if (record.kind === 'output') outputs++;
    else errors++;
  }
  const seconds = (performance.now() - started) / 1000;
  await stage.close();
  return { partitions: stage.partitions, messages: count, outputs, errors, seconds };
}

/**
 * Offer `count` messages at `rate` msg/s (null: saturation) and time each from the moment it was
 * handed to the stage to the moment its output came out. The first `warmup` messages are not counted.
 */
export async function apiLatency(count: number, rate: number | null, warmup: number, partitions: number | null): Promise<ApiLatencyResult> {
  const stage = await benchStage(partitions);
  const source = new PacedSource(count, rate);
  const latencies = new Float64Array(count - warmup);
  let outputs = 0;
  let errors = 0;
  for await (const record of stage.process(source)) {
    if (record.kind !== 'output') {
      errors++;
      continue;
    }
    outputs++;
    if (record.offset >= warmup) latencies[record.offset - warmup] = performance.now() - source.pushedAt[record.offset]!;
  }
  await stage.close();
  return {
    partitions: stage.partitions, messages: count, outputs, errors,
    offeredRate: source.achievedRate(), latency: summarize(latencies),
  };
}
