/**
 * How every number is taken and checked. A command runs as a child process measured from outside
 * (wall time, CPU seconds of its whole tree, peak RSS of its node and python processes, from /proc);
 * stdin/stdout can be files, so a CLI run sees exactly what a user's shell redirection would give it.
 * Each run becomes a sample only once its output count (and its first output's content) is right.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { descendantsOf, peakRssKb, readStat, reapedChildrenCpuSeconds } from '../test/support/processes.js';
import { messageAt } from './input.js';
import { ticksOf, TICKS_PER_SECOND } from './thread-cpu.js';

export interface MeasuredOptions {
  cwd: string;
  /** A file to read stdin from (else stdin is empty). */
  stdinFile?: string;
  /** A file to write stdout to (else stdout is captured and returned). */
  stdoutFile?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Poll the process tree for peak RSS (default true). Latency and recovery runs turn it off:
   * on 2 cores even a 1 ms /proc scan every 100 ms shows up in a p99.
   */
  sampleTree?: boolean;
}

export interface MeasuredRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Spawn to exit, seconds. */
  seconds: number;
  /**
   * CPU seconds of the child and every descendant it reaped: this process's cutime+cstime grow by
   * exactly that when it reaps the child (measurements run one at a time, so nothing else is reaped).
   */
  cpuSeconds: number;
  peaks: TreePeaks;
  stdout: string;
  /** The last 64 KiB of stderr. */
  stderr: string;
}

const STDERR_KEEP = 64 * 1024;

/** Run `command args` to completion and measure it. */
export async function runMeasured(command: string, args: string[], options: MeasuredOptions): Promise<MeasuredRun> {
  const stdin = options.stdinFile === undefined ? 'ignore' : openSync(options.stdinFile, 'r');
  const stdout = options.stdoutFile === undefined ? 'pipe' : openSync(options.stdoutFile, 'w');
  const cpuBefore = reapedChildrenCpuSeconds();
  const started = performance.now();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: [stdin, stdout, 'pipe'] });
  // The child holds its own copies of the descriptors now.
  if (typeof stdin === 'number') closeSync(stdin);
  if (typeof stdout === 'number') closeSync(stdout);
  const sampler = child.pid === undefined || options.sampleTree === false ? null : new TreeSampler(child.pid);
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    if (err.length > 2 * STDERR_KEEP) err = err.slice(-STDERR_KEEP);
  });
  let ended = 0;
  let peaks: TreePeaks | null = null;
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => {
      ended = performance.now();
      peaks = sampler?.stop() ?? null;
    });
    child.once('close', (code, sig) => resolve([code, sig]));
  });
  return {
    exitCode, signal,
    seconds: (ended - started) / 1000,
    cpuSeconds: reapedChildrenCpuSeconds() - cpuBefore,
    peaks: peaks ?? { nodeMb: 0, pythonMb: 0, pythonCpuSeconds: 0, processes: 0, mainThreadCpuSeconds: 0 },
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: err.slice(-STDERR_KEEP),
  };
}

/** Throw a readable error if a measured run failed. */
export function assertSucceeded(what: string, run: MeasuredRun): void {
  if (run.exitCode !== 0) {
    throw new Error(`${what} failed (exit ${run.exitCode ?? run.signal}); stderr tail:\n${run.stderr.slice(-3000)}`);
  }
}

// ---- The process tree, sampled from /proc while it runs.

/** Peak RSS and sampled CPU, split into the Node process(es) and the Python ones. */
export interface TreePeaks {
  /** Sum over node processes of each one's peak RSS, in MB. */
  nodeMb: number;
  /** Sum over python processes of each one's peak RSS, in MB (servers live at the same time). */
  pythonMb: number;
  /** CPU seconds of the python processes at their last sample (a lower bound: the last ~interval is missed). */
  pythonCpuSeconds: number;
  /** How many distinct processes were seen. */
  processes: number;
  /** CPU seconds of the root process's main thread at its last sample (a lower bound, like pythonCpuSeconds). */
  mainThreadCpuSeconds: number;
}

interface Seen {
  python: boolean;
  peakKb: number;
  cpuSeconds: number;
}

/**
 * Samples the tree rooted at one pid until stopped, keeping each process's peak RSS and latest CPU
 * time. Peaks come from VmHWM, which the kernel keeps, so the interval only bounds how late a
 * process's final value is seen, not how high a short spike may go between samples.
 */
export class TreeSampler {
  private readonly seen = new Map<number, Seen>();
  private readonly timer: NodeJS.Timeout;
  private mainThread = 0;

  constructor(private readonly root: number, intervalMs = 100) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Take a last sample (if the tree is still there) and return the peaks. */
  stop(): TreePeaks {
    clearInterval(this.timer);
    this.sample();
    let nodeKb = 0;
    let pythonKb = 0;
    let pythonCpuSeconds = 0;
    for (const s of this.seen.values()) {
      if (s.python) {
        pythonKb += s.peakKb;
        pythonCpuSeconds += s.cpuSeconds;
      } else {
        nodeKb += s.peakKb;
      }
    }
    return { nodeMb: nodeKb / 1024, pythonMb: pythonKb / 1024, pythonCpuSeconds, processes: this.seen.size, mainThreadCpuSeconds: this.mainThread };
  }

  private sample(): void {
    const root = readStat(this.root);
    if (root === null) return;
    this.mainThread = Math.max(this.mainThread, ticksOf(`/proc/${this.root}/task/${this.root}/stat`) / TICKS_PER_SECOND);
    for (const stat of [root, ...descendantsOf(this.root)]) {
      const peakKb = peakRssKb(stat.pid);
      if (peakKb === null) continue;
      const python = stat.comm.startsWith('python');
      // A child sampled between fork and exec still looks like its parent: its exec starts a new peak.
      const prev = this.seen.get(stat.pid)?.python === python ? this.seen.get(stat.pid) : undefined;
      this.seen.set(stat.pid, { python, peakKb: Math.max(prev?.peakKb ?? 0, peakKb), cpuSeconds: stat.cpuSeconds });
    }
  }
}

// ---- A run's numbers, kept only when its outputs are right.

/** What every runner reports for one run. */
export interface RunSample {
  runner: string;
  messages: number;
  /** Outputs the runner produced (counted by the runner, checked against `messages`). */
  outputs: number;
  /** The time the rate is computed from (see each runner for what it includes). */
  seconds: number;
  msgPerSec: number;
  /** CPU seconds of the runner's processes (node + python), or null when not measurable. */
  cpuSeconds: number | null;
  /** The python processes' part of cpuSeconds, sampled (a lower bound), or null. */
  pythonCpuSeconds: number | null;
  /** Peak RSS of the node process, MB (null for runners without one). */
  nodeMb: number | null;
  /** Peak RSS of all python processes together, MB. */
  pythonMb: number | null;
}

/** Thrown when a runner lost or invented outputs: its numbers would be meaningless. */
export class OutputCountError extends Error {}

/** Fail loudly unless the runner produced exactly one output per input message (the add model always answers). */
export function checkOutputs(runner: string, messages: number, outputs: number): void {
  if (outputs !== messages) {
    throw new OutputCountError(`${runner}: produced ${outputs} outputs for ${messages} input messages (expected exactly ${messages})`);
  }
}

/** The outside measurements of a runner's process tree, in the shape `sample` takes. */
export function treeFigures(run: MeasuredRun): { cpuSeconds: number; pythonCpuSeconds: number; nodeMb: number; pythonMb: number } {
  return { cpuSeconds: run.cpuSeconds, pythonCpuSeconds: run.peaks.pythonCpuSeconds, nodeMb: run.peaks.nodeMb, pythonMb: run.peaks.pythonMb };
}

/** Build a sample, checking its output count first. */
export function sample(
  runner: string, messages: number, outputs: number, seconds: number,
  extra: { cpuSeconds?: number | null; pythonCpuSeconds?: number | null; nodeMb?: number | null; pythonMb?: number | null } = {},
): RunSample {
  checkOutputs(runner, messages, outputs);
  if (!(seconds > 0)) throw new Error(`${runner}: measured ${seconds} s, which cannot be right`);
  return {
    runner, messages, outputs, seconds, msgPerSec: messages / seconds,
    cpuSeconds: extra.cpuSeconds ?? null, pythonCpuSeconds: extra.pythonCpuSeconds ?? null, nodeMb: extra.nodeMb ?? null, pythonMb: extra.pythonMb ?? null,
  };
}

// ---- What the runners wrote: counted line by line, the first line checked against its input.

/** Number of newline-terminated lines in a file, read in 1 MiB chunks. */
export function countLines(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) {
      for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

/** The first line of a file (at most 64 KiB of it), or '' for an empty file. */
export function firstLine(path: string): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(64 * 1024);
  try {
    const n = readSync(fd, buf);
    const text = buf.subarray(0, n).toString('utf8');
    const nl = text.indexOf('\n');
    return nl === -1 ? text : text.slice(0, nl);
  } finally {
    closeSync(fd);
  }
}

/** Where an output line says its sum is, and for which input offset. */
export type OutputReader = (line: string) => { offset: number; sum: unknown };

/** A CLI output line: {"offset":N,...,"output":{"sum":S}}. */
export const cliOutput: OutputReader = (line) => {
  const o = JSON.parse(line) as { offset: number; output: { sum: unknown } };
  return { offset: o.offset, sum: o.output.sum };
};

/** A baseline output line: {"sum": S}, in input order, so the first is message 0. */
export const plainOutput: OutputReader = (line) => ({ offset: 0, sum: (JSON.parse(line) as { sum: unknown }).sum });

/** Throw unless the file's first line is the add model's output for its input message. */
export function checkFirstOutput(runner: string, path: string, read: OutputReader): void {
  const line = firstLine(path);
  let parsed;
  try {
    parsed = read(line);
  } catch (err) {
    throw new Error(`${runner}: first output line is not what the add model writes: ${line.slice(0, 200)} (${(err as Error).message})`);
  }
  const message = messageAt(parsed.offset);
  if (parsed.sum !== message.a + message.b) {
    throw new Error(`${runner}: output for offset ${parsed.offset} has sum ${String(parsed.sum)}, expected ${message.a + message.b}`);
  }
}

// ---- Summaries: percentiles and medians.

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
