/**
 * The numpy benchmark: `npm run bench:scoring [-- --messages N --rounds R --smoke --save | --out FILE --python PYTHON]`.
 * A real model (py/models/scoring_network.py: 16 features → 64 → 64 → 1, weights from --init) through
 * the CLI in both styles, against the in-process Python loop running the per-message style on the same
 * input (16 features per message), each runner's first score checked against the network computed here.
 * Rounds are interleaved like run.ts's; the table goes to stdout, the JSON to an untracked
 * bench/results/scoring-run-<time>.json (or --out); only --save replaces the tracked bench/results/scoring.json.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../src/api/errors.js';
import { baselinesDir, cliScript, loadBenchConfig, modelsDir, PYTHON_VARIABLE, pyRoot, python, repoRoot, type ResultsNames } from './config.js';
import { KEY_COUNT } from './input.js';
import { assertSucceeded, countLines, firstLine, median, runMeasured, sample, treeFigures, type RunSample } from './measurement.js';
import { describeMachine, progress, type Machine } from './report.js';

const scoringFile = join(modelsDir, 'scoring_network.py');
const weightsFile = join(modelsDir, 'scoring_network.weights.json');
const scoringResults: ResultsNames = { script: 'scoring.js', tracked: 'scoring.json', untrackedPrefix: 'scoring-run' };

/** One row of the scoring table. */
interface ScoringRunner {
  name: string;
  run: (input: string, messages: number, workDir: string) => Promise<RunSample>;
}

export interface ScoringResults {
  date: string;
  machine: Machine;
  messages: number;
  rounds: number;
  rows: { runner: string; msgPerSec: number; seconds: number; cpuSeconds: number | null; pythonCpuSeconds: number | null; samples: RunSample[] }[];
  /** Median msg/s of each style through the CLI at default partitions over the loop's. */
  ratios: { perMessage: number; vectorised: number };
}

const LOOP = 'A pyloop (per-message)';
const CLI_ONE = 'cli default partitions, execute';
const CLI_VECTORISED = 'cli default partitions, execute_batch';
const P1 = 'cli p=1, execute_batch';
const P1_ONE_THREAD = 'cli p=1, execute_batch, 1 math thread';
const ONE_THREAD = Object.fromEntries(['OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'].map((name) => [name, '1']));

const runners: ScoringRunner[] = [
  { name: CLI_ONE, run: (input, n, dir) => measureCli(CLI_ONE, 'ScoringNetwork', null, input, n, dir) },
  { name: CLI_VECTORISED, run: (input, n, dir) => measureCli(CLI_VECTORISED, 'BatchScoringNetwork', null, input, n, dir) },
  { name: P1, run: (input, n, dir) => measureCli(P1, 'BatchScoringNetwork', 1, input, n, dir) },
  // The same with one BLAS thread: at 1 partition the default gives the server every core's worth.
  { name: P1_ONE_THREAD, run: (input, n, dir) => measureCli(P1_ONE_THREAD, 'BatchScoringNetwork', 1, input, n, dir, ONE_THREAD) },
  { name: LOOP, run: measureLoop },
];

async function measureCli(label: string, className: string, partitions: number | null, input: string, messages: number, workDir: string, env: Record<string, string> = {}): Promise<RunSample> {
  const output = join(workDir, 'cli-out.jsonl');
  const args = [cliScript, 'run', '--model', `score=${scoringFile}:${className}`, '--init', `score=${weightsFile}`, '--python', python()];
  if (partitions !== null) args.push('--partitions', String(partitions));
  const run = await runMeasured(process.execPath, args, { cwd: repoRoot, stdinFile: input, stdoutFile: output, env: { ...process.env, ...env } });
  assertSucceeded(label, run);
  checkFirstScore(label, output, (line) => {
    const o = JSON.parse(line) as { offset: number; output: { score: number } };
    return { offset: o.offset, score: o.output.score };
  });
  const outputs = countLines(output);
  rmSync(output);
  return sample(label, messages, outputs, run.seconds, treeFigures(run));
}

async function measureLoop(input: string, messages: number, workDir: string): Promise<RunSample> {
  const output = join(workDir, 'pyloop-out.jsonl');
  const run = await runMeasured(python(), [
    join(baselinesDir, 'pyloop.py'), '--model-file', scoringFile, '--class', 'ScoringNetwork', '--py-root', pyRoot, '--init', weightsFile,
  ], { cwd: repoRoot, stdinFile: input, stdoutFile: output });
  assertSucceeded(LOOP, run);
  checkFirstScore(LOOP, output, (line) => ({ offset: 0, score: (JSON.parse(line) as { score: number }).score }));
  const outputs = countLines(output);
  rmSync(output);
  return sample(LOOP, messages, outputs, run.seconds, { ...treeFigures(run), nodeMb: null });
}

/** The first output line holds the network's score of its message, computed here independently. */
function checkFirstScore(runner: string, path: string, read: (line: string) => { offset: number; score: number }): void {
  const line = firstLine(path);
  const { offset, score } = read(line);
  const expected = referenceScore(scoringWeights(readFileSync(weightsFile, 'utf8')), offset);
  if (!(Math.abs(score - expected) < 1e-9)) throw new Error(`${runner}: offset ${offset} scored ${score}, expected ${expected}`);
}

// ---- The input (16 features per message) and the network computed here, to check outputs.

/** The i-th message: 16 features in [-1, 1] with 4 decimals, a deterministic function of i. */
export function scoringMessageAt(i: number): { key: string; x: number[] } {
  const x: number[] = [];
  for (let j = 0; j < 16; j++) x.push(Math.round(Math.sin(i * 16 + j + 1) * 1e4) / 1e4);
  return { key: `acct-${i % KEY_COUNT}`, x };
}

/** Write `count` messages as JSON lines to `dir/scoring-<count>.jsonl`; returns the path. */
export function writeScoringInput(dir: string, count: number): string {
  const path = join(dir, `scoring-${count}.jsonl`);
  const fd = openSync(path, 'w');
  try {
    for (let start = 0; start < count; start += 10_000) {
      let chunk = '';
      for (let i = start; i < Math.min(count, start + 10_000); i++) chunk += JSON.stringify(scoringMessageAt(i)) + '\n';
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The weights file's contents. */
export interface ScoringWeights {
  w1: number[][];
  b1: number[];
  w2: number[][];
  b2: number[];
  w3: number[];
  b3: number;
}

export function scoringWeights(text: string): ScoringWeights {
  return JSON.parse(text) as ScoringWeights;
}

/** The network's score of message `i`, in plain TypeScript (ReLU, ReLU, sigmoid). */
export function referenceScore(w: ScoringWeights, i: number): number {
  const dense = (x: number[], m: number[][], b: number[]) => b.map((bias, j) => Math.max(0, x.reduce((sum, v, k) => sum + v * m[k]![j]!, bias)));
  const h = dense(dense(scoringMessageAt(i).x, w.w1, w.b1), w.w2, w.b2);
  const z = h.reduce((sum, v, k) => sum + v * w.w3[k]!, w.b3);
  return 1 / (1 + Math.exp(-z));
}

async function main(): Promise<void> {
  const config = await loadBenchConfig(process.argv.slice(2), scoringResults);
  process.env[PYTHON_VARIABLE] = config.python;
  const messages = config.messages;
  const out = config.out;
  const workDir = mkdtempSync(join(tmpdir(), 'pystage-bench-scoring-'));
  try {
    const machine = describeMachine();
    progress(`scoring network bench: nproc ${machine.nproc}, load average ${machine.loadAverage.toFixed(2)}, Python ${machine.python} (${config.python}); ${messages.toLocaleString('en-US')} messages, ${config.rounds} round(s)`);
    const input = writeScoringInput(workDir, messages);
    const samples = new Map<string, RunSample[]>(runners.map((r) => [r.name, []]));
    for (let round = 1; round <= config.rounds; round++) {
      for (const runner of runners) {
        const s = await runner.run(input, messages, workDir);
        samples.get(runner.name)!.push(s);
        progress(`round ${round}/${config.rounds} ${runner.name}: ${Math.round(s.msgPerSec).toLocaleString('en-US')} msg/s (${s.seconds.toFixed(2)} s)`);
      }
    }
    const med = (list: RunSample[], pick: (s: RunSample) => number | null) => {
      const values = list.map(pick).filter((v): v is number => v !== null);
      return values.length === 0 ? null : median(values);
    };
    const rows = runners.map((r) => {
      const list = samples.get(r.name)!;
      return {
        runner: r.name, samples: list, msgPerSec: med(list, (s) => s.msgPerSec)!, seconds: med(list, (s) => s.seconds)!,
        cpuSeconds: med(list, (s) => s.cpuSeconds), pythonCpuSeconds: med(list, (s) => s.pythonCpuSeconds),
      };
    });
    const rate = (name: string) => rows.find((r) => r.runner === name)!.msgPerSec;
    const results: ScoringResults = {
      date: new Date().toISOString(), machine, messages, rounds: config.rounds, rows,
      ratios: { perMessage: rate(CLI_ONE) / rate(LOOP), vectorised: rate(CLI_VECTORISED) / rate(LOOP) },
    };
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    process.stdout.write(formatScoring(results) + '\n');
    progress(`results written to ${out}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The table: each runner's median rate and its ratio to the loop, then the two ratios the issue asks for. */
export function formatScoring(r: ScoringResults): string {
  const loop = r.rows.find((row) => row.runner === LOOP)!.msgPerSec;
  const lines = [
    `pystage scoring bench: ${r.messages.toLocaleString('en-US')} messages, ${r.rounds} round(s), medians; py/models/scoring_network.py (16 → 64 → 64 → 1)`,
    `machine: nproc ${r.machine.nproc}, ${r.machine.cpu}, Node ${r.machine.node}, Python ${r.machine.python}; load average at start ${r.machine.loadAverage.toFixed(2)}`,
    '',
    `${'runner'.padEnd(40)}${'msg/s'.padStart(10)}${'× loop'.padStart(9)}${'cpu s'.padStart(8)}${'py cpu'.padStart(8)}`,
  ];
  for (const row of r.rows) {
    lines.push(`${row.runner.padEnd(40)}${Math.round(row.msgPerSec).toLocaleString('en-US').padStart(10)}${`${(row.msgPerSec / loop).toFixed(2)}×`.padStart(9)}`
      + `${(row.cpuSeconds?.toFixed(2) ?? '-').padStart(8)}${(row.pythonCpuSeconds?.toFixed(2) ?? '-').padStart(8)}`);
  }
  lines.push('', `per-message style (execute) through the CLI: ${r.ratios.perMessage.toFixed(2)}× the loop; vectorised (execute_batch): ${r.ratios.vectorised.toFixed(2)}× the loop (goal ≥ 2.5×: ${r.ratios.vectorised >= 2.5 ? 'met' : 'NOT MET'})`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(err instanceof UsageError ? `${err.message}\n` : `scoring bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  });
}
