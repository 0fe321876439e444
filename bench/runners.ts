/**
 * The runners: every way the harness runs pystage, and the rows of the throughput table.
 * The CLI is measured from outside (spawn → exit). The embedded API is measured in-process
 * (throughput, push → output latency, startup, restart), always inside a fresh node child so one
 * run's heap, JIT state and RSS never leak into the next: this module is also that child's entry
 * point, `node dist/bench/runners.js '<ChildTask JSON>'`, which prints its result as one JSON line.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createStage, type Stage } from '../src/index.js';
import { measurePyloop, runLockstep, runPythonShell, type LockstepResult, type ShellResult } from './baselines.js';
import { cliScript, modelFile, modelName, python, repoRoot, runnersScript, type BenchConfig } from './config.js';
import { messages, PacedSource } from './input.js';
import {
  assertSucceeded, checkFirstOutput, cliOutput, countLines, runMeasured, sample, summarize, treeFigures,
  type LatencySummary, type MeasuredRun, type RunSample,
} from './measurement.js';
import type { BenchResults } from './report.js';
import { apiCpu, type CliCpuPerMessage } from './thread-cpu.js';

/** One row of the throughput table: how to measure it once. */
export interface Runner {
  name: string;
  run: () => Promise<RunSample>;
}

/** The runners in the order each round runs them, and which rows the ratios use. */
export function throughputRunners(config: BenchConfig, inputPath: string, workDir: string): { runners: Runner[]; names: BenchResults['names'] } {
  const n = config.messages;
  const d = config.defaultPartitions;
  // Partitions 1, 2 and the default; the default runs without an explicit count, as a user would.
  const counts = [...new Set([1, 2, d])].sort((a, b) => a - b);
  const label = (kind: string, p: number) => `${kind} p=${p}${p === d ? ' (default)' : ''}`;
  const runners: Runner[] = [
    ...counts.map((p) => ({ name: label('cli', p), run: () => measureCli(label('cli', p), inputPath, n, p === d ? null : p, workDir) })),
    ...counts.map((p) => ({ name: label('api', p), run: () => measureApi(label('api', p), n, p === d ? null : p) })),
    { name: 'A pyloop', run: () => measurePyloop(inputPath, n, workDir) },
    { name: 'B python-shell', run: () => measurePythonShell(n) },
    { name: 'C lockstep', run: () => measureLockstep(config.lockstepMessages, inputPath) },
  ];
  return {
    runners,
    names: { cliDefault: label('cli', d), apiDefault: label('api', d), pyloop: 'A pyloop', pythonShell: 'B python-shell', lockstep: 'C lockstep' },
  };
}

// ---- The CLI, from outside: stdin from the input file, stdout to a file, spawn → exit (what a CLI user waits).

/** The CLI's stderr summary line. */
interface CliSummary {
  in: number;
  out: number;
  errors: number;
}

function cliArgs(partitions: number | null): string[] {
  const args = [cliScript, 'run', '--model', `${modelName}=${modelFile}`, '--python', python()];
  if (partitions !== null) args.push('--partitions', String(partitions));
  return args;
}

/**
 * The CLI's CPU per message at default partitions: a run over `inputPath` less a run over no input
 * (start-up and close), node = the tree's exact CPU less the servers' sampled CPU (so node's figure is
 * an upper bound and the main thread's, sampled too, a lower one; both miss at most the last 100 ms).
 */
export async function measureCliCpu(inputPath: string, messages: number, workDir: string): Promise<CliCpuPerMessage> {
  const empty = join(workDir, 'empty.jsonl');
  writeFileSync(empty, '');
  const runs = [];
  for (const file of [empty, inputPath]) {
    const run = await runMeasured(process.execPath, cliArgs(null), { cwd: repoRoot, stdinFile: file, stdoutFile: join(workDir, 'cpu-out.jsonl') });
    assertSucceeded('cli cpu', run);
    runs.push(run);
  }
  const [zero, full] = runs as [MeasuredRun, MeasuredRun];
  const us = (f: (r: MeasuredRun) => number) => (f(full) - f(zero)) * 1e6 / messages;
  return {
    partitions: availableParallelism(), messages,
    nodeUs: us((r) => r.cpuSeconds - r.peaks.pythonCpuSeconds), mainUs: us((r) => r.peaks.mainThreadCpuSeconds), pythonUs: us((r) => r.peaks.pythonCpuSeconds),
  };
}

/** Run the CLI over `inputPath` (`messages` lines) with `partitions` (null: the CLI's default). */
export async function measureCli(label: string, inputPath: string, messages: number, partitions: number | null, workDir: string): Promise<RunSample> {
  const outputPath = join(workDir, 'cli-out.jsonl');
  const run = await runMeasured(process.execPath, cliArgs(partitions), { cwd: repoRoot, stdinFile: inputPath, stdoutFile: outputPath });
  assertSucceeded(label, run);
  const summary = summaryOf(label, run.stderr);
  if (summary.in !== messages || summary.errors !== 0) {
    throw new Error(`${label}: the CLI read ${summary.in} of ${messages} messages and reported ${summary.errors} errors`);
  }
  const outputs = countLines(outputPath);
  checkFirstOutput(label, outputPath, cliOutput);
  rmSync(outputPath);
  return sample(label, messages, outputs, run.seconds, treeFigures(run));
}

function summaryOf(label: string, stderr: string): CliSummary {
  const line = stderr.split('\n').reverse().find((l) => l.startsWith('{"summary"'));
  if (line === undefined) throw new Error(`${label}: no summary line on stderr:\n${stderr.slice(-2000)}`);
  return (JSON.parse(line) as { summary: CliSummary }).summary;
}

// ---- Running one measurement in a fresh node child, measured from outside (CPU, peak RSS).

/** The measurements that run inside a fresh node child; `partitions: null` means the stage's default (one per core). */
export type ChildTask =
  | { kind: 'api-throughput'; messages: number; partitions: number | null }
  | { kind: 'api-cpu'; messages: number; partitions: number | null }
  | { kind: 'api-latency'; partitions: number | null; rate: number | null; messages: number; warmup: number }
  | { kind: 'api-startup'; partitions: number; samples: number }
  | { kind: 'api-restart'; partitions: number; kills: number; rate: number; gapMs: number }
  | { kind: 'python-shell'; messages: number }
  | { kind: 'lockstep'; messages: number; inputPath: string };

/** The child's result (its last stdout line) and the outside measurements of its process tree (RSS only if `sampleTree`). */
export async function runChild<T>(task: ChildTask, sampleTree = true): Promise<{ result: T; run: MeasuredRun }> {
  const run = await runMeasured(process.execPath, [runnersScript, JSON.stringify(task)], { cwd: repoRoot, sampleTree });
  assertSucceeded(`bench child ${task.kind}`, run);
  const last = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return { result: JSON.parse(last) as T, run };
  } catch {
    throw new Error(`bench child ${task.kind} printed no result line; stdout tail: ${run.stdout.slice(-500)}`);
  }
}

/** What the child does with its task. */
function runTask(task: ChildTask): Promise<unknown> {
  switch (task.kind) {
    case 'api-throughput': return apiThroughput(task.messages, task.partitions);
    case 'api-cpu': return apiCpu(task.messages, () => benchStage(task.partitions));
    case 'api-latency': return apiLatency(task.messages, task.rate, task.warmup, task.partitions);
    case 'api-startup': return apiStartup(task.partitions, task.samples);
    case 'api-restart': return apiRestart(task.partitions, task.kills, task.rate, task.gapMs);
    case 'python-shell': return runPythonShell(task.messages);
    case 'lockstep': return runLockstep(task.messages, task.inputPath);
  }
}

async function measureApi(name: string, messages: number, partitions: number | null): Promise<RunSample> {
  const { result, run } = await runChild<ApiThroughputResult>({ kind: 'api-throughput', messages, partitions });
  if (result.errors !== 0) throw new Error(`${name}: ${result.errors} messages failed`);
  return sample(name, messages, result.outputs, result.seconds, treeFigures(run));
}

async function measurePythonShell(messages: number): Promise<RunSample> {
  const { result, run } = await runChild<ShellResult>({ kind: 'python-shell', messages });
  return sample('B python-shell', messages, result.outputs, result.seconds, treeFigures(run));
}

async function measureLockstep(messages: number, inputPath: string): Promise<RunSample> {
  const { result, run } = await runChild<LockstepResult>({ kind: 'lockstep', messages, inputPath });
  return sample('C lockstep', messages, result.outputs, result.seconds, treeFigures(run));
}

// ---- The embedded API, in-process (inside the child): throughput and latency at saturation or a fixed load.

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

// ---- The embedded API's recovery (inside the child): createStage → ready, and SIGKILL of one server under load → that partition's next output.

export interface StartupResult {
  partitions: number;
  /** createStage → resolved, ms, one per stage started (each closed before the next). */
  samples: number[];
}

export interface RestartResult {
  partitions: number;
  /** SIGKILL → first output from that partition of a message pushed after the kill, ms. */
  samples: number[];
  messages: number;
  outputs: number;
  errors: number;
  /** Restarts the stage counted (should equal the kills). */
  restarts: number;
}

/** How long a killed partition may take to answer again before the run counts as failed. */
const RESTART_DEADLINE_MS = 15_000;

/** Start and close `samples` stages one after another, timing each start. */
export async function apiStartup(partitions: number, samples: number): Promise<StartupResult> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const stage = await benchStage(partitions);
    times.push(performance.now() - started);
    await stage.close();
  }
  return { partitions, samples: times };
}

/**
 * Under a steady offered load, SIGKILL partition k % partitions's server `kills` times, `gapMs` apart.
 * Only messages pushed after the kill count as "the next output": an output already on its way when
 * the server died would otherwise look like an instant recovery.
 */
export async function apiRestart(partitions: number, kills: number, rate: number, gapMs: number): Promise<RestartResult> {
  // The stage logs every broken connection at warn; the harness reports restarts itself.
  const stage = await benchStage(partitions, 'error');
  const source = new PacedSource(Math.ceil(rate * (kills * (gapMs + 2000) + 5000) / 1000), rate);
  // Typed by assertion: the consumer below is an IIFE, and TypeScript would narrow a plain `= null` to null inside it.
  let waiting = null as { partition: number; fromOffset: number; arrived: () => void } | null;
  let outputs = 0;
  let errors = 0;
  const consumed = (async () => {
    for await (const record of stage.process(source)) {
      if (record.kind !== 'output') {
        errors++;
        continue;
      }
      outputs++;
      if (waiting !== null && record.partition === waiting.partition && record.offset >= waiting.fromOffset) {
        waiting.arrived();
        waiting = null;
      }
    }
  })();
  await sleep(gapMs);
  const times: number[] = [];
  for (let k = 0; k < kills; k++) {
    const partition = k % partitions;
    const pid = (await stage.status())[partition]!.serverPid;
    if (pid === null) throw new Error(`partition ${partition} reports no server pid`);
    let deadline: NodeJS.Timeout | undefined;
    const arrived = new Promise<void>((resolve, reject) => {
      waiting = { partition, fromOffset: source.pushed, arrived: resolve };
      deadline = setTimeout(() => reject(new Error(`partition ${partition} produced no output within ${RESTART_DEADLINE_MS} ms of its server being killed`)), RESTART_DEADLINE_MS);
    });
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');
    await arrived.finally(() => clearTimeout(deadline));
    times.push(performance.now() - killedAt);
    await sleep(gapMs);
  }
  source.stop();
  await consumed;
  const { restarts } = stage.stats();
  await stage.close();
  return { partitions, samples: times, messages: source.pushed, outputs, errors, restarts };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runTask(JSON.parse(process.argv[2]!) as ChildTask).then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
  }, (err: unknown) => {
    process.stderr.write(`bench child failed: ${(err as Error).stack ?? String(err)}\n`);
    // Exit now: a failed measurement may leave a stage running, whose exit hook then kills its servers.
    process.exit(1);
  });
}
