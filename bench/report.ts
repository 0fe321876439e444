/** The human report (a table on stdout) and the JSON results file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchResults, RunnerSummary } from './results.js';

const n0 = (v: number) => Math.round(v).toLocaleString('en-US');
const f = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

/** The whole report as text. */
export function formatReport(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`pystage bench: ${r.config.messages.toLocaleString('en-US')} messages, ${r.config.rounds} round(s), medians; model py/models/add.py${r.config.smoke ? '; SMOKE sizes' : ''}`);
  out.push(`machine: nproc ${m.nproc}, ${m.cpu}, ${m.memoryGb} GB, Linux ${m.kernel}, Node ${m.node}, Python ${m.python}; load average at start ${m.loadAverage.toFixed(2)}`);
  out.push('');
  out.push(...throughputTable(r));
  out.push('');
  const lat = r.latency;
  out.push(row(['API latency push → output (default partitions)', 'offered msg/s', 'p50 ms', 'p99 ms', 'max ms', 'n'], [46, 14, 8, 8, 8, 9]));
  for (const [label, l] of [[`fixed load ${n0(r.config.latency.rate)} msg/s`, lat.fixed], ['saturation', lat.saturation]] as const) {
    out.push(row([label, n0(l.offeredRate), f(l.latency.p50, 3), f(l.latency.p99, 3), f(l.latency.max, 2), n0(l.latency.count)], [46, 14, 8, 8, 8, 9]));
  }
  out.push('');
  out.push(`startup of ${r.startup.partitions} partitions (createStage → ready): median ${f(r.startup.medianMs, 0)} ms; samples ${r.startup.samples.map((v) => v.toFixed(0)).join(', ')} ms`);
  out.push(`restart (SIGKILL a server at ${n0(r.config.restart.rate)} msg/s → next output of its partition): median ${f(r.restart.medianMs, 0)} ms; samples ${r.restart.samples.map((v) => v.toFixed(0)).join(', ')} ms; stage counted ${r.restart.restarts} restarts, ${r.restart.errors} errors`);
  const mem = r.memory;
  out.push(`memory (CLI, default partitions, peak RSS node + servers; one run each): ${(mem.growth * 100).toFixed(1)}% growth`);
  for (const s of [mem.small, mem.large]) {
    out.push(`  ${n0(s.messages).padStart(9)} msgs: ${f((s.nodeMb ?? 0) + (s.pythonMb ?? 0))} MB (node ${f(s.nodeMb)} + python ${f(s.pythonMb)}); ${n0(s.msgPerSec)} msg/s, ${s.seconds.toFixed(2)} s`);
  }
  out.push('');
  out.push('targets:');
  for (const t of r.targets) {
    out.push(`  ${t.met ? '[met]    ' : '[NOT MET]'} ${t.name}: ${t.actual} (goal ${t.goal}; ${t.margin})`);
    if (t.note) out.push(`              ${t.note}`);
  }
  return out.join('\n');
}

function throughputTable(r: BenchResults): string[] {
  const widths = [22, 10, 9, 8, 9, 10, 7, 8, 8, 10];
  const base = (name: string) => r.throughput.find((t) => t.runner === name)!.msgPerSec;
  const lines = [row(['runner', 'messages', 'msg/s', '×A loop', '×B shell', '×C lockst', 'cpu s', 'py cpu', 'node MB', 'python MB'], widths)];
  for (const t of r.throughput) {
    lines.push(row([
      t.runner, n0(t.messages), n0(t.msgPerSec),
      ratio(t, base(r.names.pyloop)), ratio(t, base(r.names.pythonShell)), ratio(t, base(r.names.lockstep)),
      f(t.cpuSeconds, 2), f(t.pythonCpuSeconds, 2), f(t.nodeMb), f(t.pythonMb),
    ], widths));
  }
  return lines;
}

function ratio(t: RunnerSummary, baseline: number): string {
  return `${(t.msgPerSec / baseline).toFixed(2)}×`;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ').trimEnd();
}

/** Write the results as pretty JSON, creating the directory if needed. */
export function writeResults(path: string, results: BenchResults): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
}
