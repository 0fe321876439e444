/** The throughput runners compared in every round: the CLI and the API at each partition count, and the baselines. */
import type { LockstepResult } from './baselines/lockstep.js';
import type { ShellResult } from './baselines/python-shell.js';
import { measurePyloop } from './baselines/pyloop.js';
import type { BenchConfig } from './bench-config.js';
import type { ApiThroughputResult } from './measure-api.js';
import { measureCli } from './measure-cli.js';
import type { BenchResults } from './results.js';
import { runChild } from './run-child.js';
import { sample, treeFigures, type RunSample } from './run-sample.js';

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
