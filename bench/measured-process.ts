/**
 * Runs one command as a child process and measures it from outside: wall time, CPU seconds of
 * its whole tree, peak RSS of its node and python processes. stdin/stdout can be files, so a
 * CLI run sees exactly what a user's shell redirection would give it.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { reapedChildrenCpuSeconds } from './proc-stats.js';
import { TreeSampler, type TreePeaks } from './tree-sampler.js';

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
    peaks: peaks ?? { nodeMb: 0, pythonMb: 0, pythonCpuSeconds: 0, processes: 0 },
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
