/**
 * One run's results and what is shown of them: the JSON shape (what bench/results/*.json hold), the
 * machine it ran on, progress lines, the text report, and the README's table. Both READMEs quote one
 * saved run, rendered from its file: `node dist/bench/report.js [FILE] [--readme]`
 * (FILE defaults to bench/results/latest.json, the run saved with `npm run bench -- --save`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mainResults, python, resultsDir, type BenchConfig } from './config.js';
import type { RunSample } from './measurement.js';
import type { ApiLatencyResult, RestartResult, StartupResult } from './runners.js';
import type { Target } from './targets.js';
import { partitionsFed, type CliCpuPerMessage, type CpuPerMessage } from './thread-cpu.js';

/** Medians over a runner's rounds. */
export interface RunnerSummary {
  runner: string;
  messages: number;
  samples: RunSample[];
  msgPerSec: number;
  seconds: number;
  cpuSeconds: number | null;
  pythonCpuSeconds: number | null;
  nodeMb: number | null;
  pythonMb: number | null;
}

/** One run of the main harness: what bench/results/latest.json and every run-<time>.json hold. */
export interface BenchResults {
  date: string;
  machine: Machine;
  config: BenchConfig;
  /** Runner names of the rows the ratios are taken for. */
  names: { cliDefault: string; apiDefault: string; pyloop: string; pythonShell: string; lockstep: string };
  throughput: RunnerSummary[];
  /** `fixedLow` (1,000 msg/s) and `cpu` are absent from runs saved before issue 20. */
  latency: { fixed: ApiLatencyResult; saturation: ApiLatencyResult; fixedLow?: ApiLatencyResult };
  /** CPU per message by thread through the API: default partitions, then one partition. */
  cpu?: CpuPerMessage[];
  /** The CLI's CPU per message at default partitions (start-up and close taken out). */
  cliCpu?: CliCpuPerMessage;
  startup: StartupResult & { medianMs: number };
  restart: RestartResult & { medianMs: number };
  memory: { small: RunSample; large: RunSample; smallTotalMb: number; largeTotalMb: number; growth: number };
  targets: Target[];
}

/** The machine a run happened on, for the report and the README. */
export interface Machine {
  nproc: number;
  cpu: string;
  memoryGb: number;
  kernel: string;
  node: string;
  python: string;
  /** 1-minute load average when the run started: above ~0.5 × nproc, something else was competing. */
  loadAverage: number;
}

/** Describe this machine. */
export function describeMachine(): Machine {
  let pythonVersion = 'unknown';
  try {
    pythonVersion = execFileSync(python(), ['--version'], { encoding: 'utf8' }).trim().replace(/^Python /, '');
  } catch { /* reported as unknown */ }
  return {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    python: pythonVersion,
    loadAverage: loadavg()[0]!,
  };
}

const started = performance.now();

/** Print one progress line on stderr, stamped with the time since the harness started. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

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
  const rows: [string, ApiLatencyResult][] = [[`fixed load ${n0(r.config.latency.rate)} msg/s`, lat.fixed], ['saturation', lat.saturation]];
  if (lat.fixedLow !== undefined) rows.unshift([`fixed load ${n0(r.config.latency.lowRate)} msg/s`, lat.fixedLow]);
  for (const [label, l] of rows) {
    out.push(row([label, n0(l.offeredRate), f(l.latency.p50, 3), f(l.latency.p99, 3), f(l.latency.max, 2), n0(l.latency.count)], [46, 14, 8, 8, 8, 9]));
  }
  out.push('');
  if (r.cpu !== undefined) {
    out.push(row(['CPU per message, µs (API, streaming only)', 'node all', 'main', 'workers', 'other', 'python', 'main feeds'], [46, 9, 7, 8, 7, 7, 11]));
    for (const c of r.cpu) {
      out.push(row([`${c.partitions} partition(s), ${n0(c.messages)} messages`, f(c.nodeUs, 2), f(c.mainUs, 2), f(c.workersUs, 2), f(c.otherUs, 2), f(c.pythonUs, 2), `${f(partitionsFed(c), 1)} p`], [46, 9, 7, 8, 7, 7, 11]));
    }
    const c = r.cliCpu;
    if (c !== undefined) out.push(row([`CLI, ${c.partitions} partition(s), ${n0(c.messages)} messages`, f(c.nodeUs, 2), f(c.mainUs, 2), '-', '-', f(c.pythonUs, 2), `${f(c.pythonUs / c.mainUs, 1)} p`], [46, 9, 7, 8, 7, 7, 11]));
    out.push('');
  }
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

/** The README's table (Performance): the CLI at each partition count, the API at the default, the baselines. */
export function formatReadmeTable(r: BenchResults): string {
  const d = r.config.defaultPartitions;
  const rate = (name: string) => r.throughput.find((t) => t.runner === name)!.msgPerSec;
  const loop = rate(r.names.pyloop);
  const shell = rate(r.names.pythonShell);
  const described: [string, string][] = [
    ...r.throughput.filter((t) => t.runner.startsWith('cli p=')).map((t): [string, string] => {
      const p = Number(/^cli p=(\d+)/.exec(t.runner)![1]);
      return [t.runner, p === d ? `\`pystage run\`, default (${d}) partitions` : `\`pystage run\`, ${p} partition${p === 1 ? '' : 's'}`];
    }),
    [r.names.apiDefault, `API, default (${d}) partitions`],
    [r.names.pyloop, 'in-process Python loop (baseline A)'],
    [r.names.pythonShell, 'python-shell, streaming (baseline B)'],
    [r.names.lockstep, 'lockstep, one request at a time (baseline C)'],
  ];
  return [
    '| runner | msg/s | × in-process Python loop | × python-shell |',
    '|---|---|---|---|',
    ...described.map(([name, what]) => `| ${what} | ${n0(rate(name))} | ${(rate(name) / loop).toFixed(2)}× | ${(rate(name) / shell).toFixed(2)}× |`),
  ].join('\n');
}

/** Print the report (or with --readme the README's table) of a saved run. */
function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { readme: { type: 'boolean', default: false } } });
  const file = resolve(positionals[0] ?? resolve(resultsDir, mainResults.tracked));
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  process.stdout.write((values.readme ? formatReadmeTable(results) : formatReport(results)) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: node dist/bench/report.js [FILE] [--readme]\n`);
    process.exitCode = 2;
  }
}
