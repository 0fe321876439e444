/** The machine a run happened on, for the report and the README. */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { python } from './paths.js';

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
