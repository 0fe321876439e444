/** The issue's targets, each judged met or not met, with by how much. */
import type { BenchResults, RunnerSummary } from './report.js';

export interface Target {
  name: string;
  goal: string;
  actual: string;
  met: boolean;
  /** "12% to spare" or "23% short" / "40% over". */
  margin: string;
  /** Related figures that are not the verdict (e.g. the same ratio at other sizes). */
  note?: string;
}

type Inputs = Omit<BenchResults, 'targets'>;

/** Judge every target against one run's results. */
export function evaluateTargets(r: Inputs): Target[] {
  const rate = (name: string) => find(r.throughput, name).msgPerSec;
  const cli = rate(r.names.cliDefault);
  const count = (n: number) => n.toLocaleString('en-US');
  const size = `${count(r.config.messages)} messages`;
  const issueSizes = r.memory.small.messages === 1_000_000 && r.memory.large.messages === 4_000_000;
  const cliTotals = r.throughput.filter((t) => t.runner.startsWith('cli'))
    .flatMap((t) => t.samples).concat([r.memory.small, r.memory.large])
    .map((s) => (s.nodeMb ?? 0) + (s.pythonMb ?? 0));
  // The memory pair's CLI runs are the same CLI at other sizes: one sample each, not interleaved, so
  // they are shown beside the verdict, not used for it. Throughput climbs during the first ~1M messages.
  const atOtherSizes = (baseline: number) => [r.memory.small, r.memory.large]
    .map((s) => `${count(s.messages)} msgs ${(s.msgPerSec / baseline).toFixed(2)}×`).join(', ');
  const withNote = (t: Target, baseline: number): Target => ({
    ...t, note: `single CLI runs of the memory pair against this median: ${atOtherSizes(baseline)}`,
  });
  return [
    // Issue 20: ≥ 2× the loop at 1,000,000 messages, ≥ 1.7× at 500,000; issue 8: ≥ 1.5× below (warm-up weighs more there).
    withNote(atLeast(`CLI default partitions vs A pyloop, ${size}`, cli / rate(r.names.pyloop), r.config.messages >= 1_000_000 ? 2 : r.config.messages >= 500_000 ? 1.7 : 1.5, '×', 2), rate(r.names.pyloop)),
    withNote(atLeast(`CLI default partitions vs B python-shell, ${size}`, cli / rate(r.names.pythonShell), 4, '×', 2), rate(r.names.pythonShell)),
    atMost(`API p50 latency at ${r.config.latency.rate.toLocaleString('en-US')} msg/s`, r.latency.fixed.latency.p50, 0.3, 'ms', 3),
    atMost(`API p99 latency at ${r.config.latency.rate.toLocaleString('en-US')} msg/s`, r.latency.fixed.latency.p99, 1, 'ms', 3),
    ...(r.latency.fixedLow === undefined ? [] : [atMost(`API p99 latency at ${r.config.latency.lowRate.toLocaleString('en-US')} msg/s`, r.latency.fixedLow.latency.p99, 0.7, 'ms', 3)]),
    ...(r.cpu === undefined ? [] : [
      atMost('Node CPU per message, all threads (API, default partitions)', r.cpu[0]!.nodeUs, 2, 'µs', 2),
      atMost('Node main-thread CPU per message (API, default partitions)', r.cpu[0]!.mainUs, 1, 'µs', 2),
    ]),
    ...(r.cliCpu === undefined ? [] : [
      atMost('Node CPU per message, all threads (CLI, default partitions)', r.cliCpu.nodeUs, 2, 'µs', 2),
      atMost('Node main-thread CPU per message (CLI, default partitions)', r.cliCpu.mainUs, 1, 'µs', 2),
    ]),
    atMost(
      `Memory flat: CLI peak RSS (node + servers) at ${count(r.memory.large.messages)} vs ${count(r.memory.small.messages)} messages${issueSizes ? '' : ' (target stated for 4M vs 1M)'}`,
      r.memory.growth * 100, 10, '% growth', 1,
    ),
    atMost('Peak RSS node + servers, largest CLI run', Math.max(...cliTotals), 300, 'MB', 0),
    atMost('Median restart (SIGKILL → next output of that partition)', r.restart.medianMs, 300, 'ms', 0),
    atMost('Median startup of 2 partitions (createStage → ready)', r.startup.medianMs, 500, 'ms', 0),
  ];
}

function find(rows: RunnerSummary[], name: string): RunnerSummary {
  const row = rows.find((t) => t.runner === name);
  if (!row) throw new Error(`no throughput row named ${name}`);
  return row;
}

function atLeast(name: string, actual: number, goal: number, unit: string, digits: number): Target {
  const met = actual >= goal;
  const pct = Math.abs(actual - goal) / goal * 100;
  return { name, goal: `≥ ${goal}${unit}`, actual: `${actual.toFixed(digits)}${unit}`, met, margin: `${pct.toFixed(0)}% ${met ? 'to spare' : 'short'}` };
}

function atMost(name: string, actual: number, goal: number, unit: string, digits: number): Target {
  const met = actual <= goal;
  const sep = unit.startsWith('%') ? '' : ' ';
  // A percentage goal is missed or beaten by percentage points, not by a percentage of itself.
  const amount = sep === '' ? `${Math.abs(actual - goal).toFixed(1)} points` : `${(Math.abs(actual - goal) / goal * 100).toFixed(0)}%`;
  return {
    name, goal: `≤ ${goal}${sep}${unit}`, actual: `${actual.toFixed(digits)}${sep}${unit}`, met,
    margin: `${amount} ${met ? 'to spare' : 'over'}`,
  };
}
