/** One measured run of one runner, and the check every runner's output count must pass. */
import type { MeasuredRun } from './measured-process.js';

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
