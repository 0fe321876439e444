/** Percentiles and medians for the report. */

/** Latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of already sorted values (p in 0..1). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** p50/p99/max/mean of latencies (ms); sorts its argument in place. */
export function summarize(latencies: Float64Array): LatencySummary {
  latencies.sort();
  let sum = 0;
  for (const v of latencies) sum += v;
  return {
    count: latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.length > 0 ? latencies[latencies.length - 1]! : NaN,
    mean: latencies.length > 0 ? sum / latencies.length : NaN,
  };
}

/** Median of a list (the lower middle for even lengths, so it is always a measured value). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}
