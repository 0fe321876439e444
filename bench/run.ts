/**
 * The benchmark harness: `npm run bench [-- --messages N --rounds R --smoke --save | --out FILE --python PYTHON]`.
 * Runs every throughput runner once per round, interleaved (A B C … A B C …) so drift on a noisy
 * machine hits all of them alike, then latency, startup, restart and the flat-memory pair.
 * Progress on stderr, the table on stdout, the JSON to an untracked bench/results/run-<time>.json
 * (or --out); only --save replaces the tracked bench/results/latest.json that the READMEs quote.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../src/api/errors.js';
import { loadBenchConfig, PYTHON_VARIABLE, type BenchConfig } from './config.js';
import { writeInputFile } from './input.js';
import { median, type RunSample } from './measurement.js';
import { describeMachine, formatReport, progress, writeResults, type BenchResults, type RunnerSummary } from './report.js';
import { measureCli, measureCliCpu, runChild, throughputRunners, type ApiLatencyResult, type RestartResult, type Runner, type StartupResult } from './runners.js';
import { evaluateTargets } from './targets.js';
import type { CpuPerMessage } from './thread-cpu.js';

async function main(config: BenchConfig): Promise<void> {
  // Every runner, including those in child processes, uses the interpreter resolved once here.
  process.env[PYTHON_VARIABLE] = config.python;
  const workDir = mkdtempSync(join(tmpdir(), 'pystage-bench-'));
  try {
    const machine = describeMachine();
    progress(`nproc ${machine.nproc}, Node ${machine.node}, Python ${machine.python} (${config.python}); ${config.messages.toLocaleString('en-US')} messages, ${config.rounds} round(s); work dir ${workDir}`);
    if (machine.loadAverage > machine.nproc / 2) {
      progress(`warning: load average ${machine.loadAverage.toFixed(2)} on ${machine.nproc} cores; something else is running, and the numbers will show it`);
    }
    const input = writeInputFile(workDir, config.messages);
    const { runners, names } = throughputRunners(config, input.path, workDir);
    const samples = await runRounds(runners, config.rounds);
    const latency = await measureLatency(config);
    const cpu = await measureCpu(config);
    progress(`CPU per message, CLI at default partitions: a run over no input, then ${config.messages.toLocaleString('en-US')} messages`);
    const cliCpu = await measureCliCpu(input.path, config.messages, workDir);
    const { startup, restart } = await measureRecovery(config);
    const memory = await measureMemory(config, workDir);

    const partial: Omit<BenchResults, 'targets'> = {
      date: new Date().toISOString(), machine, config, names,
      throughput: runners.map((r) => summarize(r.name, samples.get(r.name)!)),
      latency,
      cpu,
      cliCpu,
      startup: { ...startup, medianMs: median(startup.samples) },
      restart: { ...restart, medianMs: median(restart.samples) },
      memory,
    };
    const results: BenchResults = { ...partial, targets: evaluateTargets(partial) };
    writeResults(config.out, results);
    process.stdout.write(formatReport(results) + '\n');
    progress(`results written to ${config.out}${config.save ? '; the READMEs quote this run: render their tables with node dist/bench/report.js [--readme]' : ''}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Every runner once per round, in the same order each round. */
async function runRounds(runners: Runner[], rounds: number): Promise<Map<string, RunSample[]>> {
  const samples = new Map<string, RunSample[]>(runners.map((r) => [r.name, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const runner of runners) {
      const s = await runner.run();
      samples.get(runner.name)!.push(s);
      progress(`round ${round}/${rounds} ${runner.name}: ${Math.round(s.msgPerSec).toLocaleString('en-US')} msg/s (${s.seconds.toFixed(2)} s)`);
    }
  }
  return samples;
}

/** Push → output latency through the API at the fixed offered load and at saturation (tree not sampled: no jitter). */
async function measureLatency(config: BenchConfig): Promise<BenchResults['latency']> {
  const l = config.latency;
  progress(`latency at ${l.rate} msg/s for ${((l.messages - l.warmup) / l.rate).toFixed(1)} s`);
  const fixed = (await runChild<ApiLatencyResult>({ kind: 'api-latency', partitions: null, rate: l.rate, messages: l.messages, warmup: l.warmup }, false)).result;
  checkAllAnswered('latency at fixed load', fixed);
  progress(`latency at saturation, ${l.saturationMessages.toLocaleString('en-US')} messages`);
  const saturation = (await runChild<ApiLatencyResult>({
    kind: 'api-latency', partitions: null, rate: null, messages: l.saturationMessages, warmup: Math.floor(l.saturationMessages / 10),
  }, false)).result;
  checkAllAnswered('latency at saturation', saturation);
  progress(`latency at ${l.lowRate} msg/s for ${((l.lowMessages - l.lowWarmup) / l.lowRate).toFixed(1)} s`);
  const fixedLow = (await runChild<ApiLatencyResult>({ kind: 'api-latency', partitions: null, rate: l.lowRate, messages: l.lowMessages, warmup: l.lowWarmup }, false)).result;
  checkAllAnswered('latency at low load', fixedLow);
  return { fixed, saturation, fixedLow };
}

/** CPU per message by thread through the API, default partitions and one (tree not sampled: it reads /proc itself). */
async function measureCpu(config: BenchConfig): Promise<CpuPerMessage[]> {
  const out: CpuPerMessage[] = [];
  for (const partitions of [null, 1]) {
    progress(`CPU per message, ${partitions ?? 'default'} partition(s), ${config.messages.toLocaleString('en-US')} messages`);
    out.push((await runChild<CpuPerMessage>({ kind: 'api-cpu', messages: config.messages, partitions }, false)).result);
  }
  return out;
}

/** Startup of 2 partitions, then restarts after SIGKILL under load. */
async function measureRecovery(config: BenchConfig): Promise<{ startup: StartupResult; restart: RestartResult }> {
  progress(`startup of 2 partitions × ${config.startupSamples}`);
  const startup = (await runChild<StartupResult>({ kind: 'api-startup', partitions: 2, samples: config.startupSamples }, false)).result;
  const rs = config.restart;
  progress(`restart: ${rs.kills} SIGKILLs at ${rs.rate} msg/s`);
  const restart = (await runChild<RestartResult>({ kind: 'api-restart', ...rs }, false)).result;
  checkAllAnswered('restart run', restart);
  if (restart.samples.length !== rs.kills) throw new Error(`restart: ${restart.samples.length} of ${rs.kills} kills measured`);
  return { startup, restart };
}

/** Peak RSS of the CLI at default partitions on N and then 4N messages. */
async function measureMemory(config: BenchConfig, workDir: string): Promise<BenchResults['memory']> {
  const measure = async (label: string, messages: number) => {
    progress(`memory: CLI default partitions at ${messages.toLocaleString('en-US')} messages`);
    const input = writeInputFile(workDir, messages);
    const s = await measureCli(label, input.path, messages, null, workDir);
    rmSync(input.path);
    return s;
  };
  const small = await measure('cli memory 1×', config.memory.small);
  const large = await measure('cli memory 4×', config.memory.large);
  const total = (s: RunSample) => (s.nodeMb ?? 0) + (s.pythonMb ?? 0);
  return { small, large, smallTotalMb: total(small), largeTotalMb: total(large), growth: total(large) / total(small) - 1 };
}

/** Medians of a runner's rounds; every sample already passed its output-count check. */
function summarize(runner: string, samples: RunSample[]): RunnerSummary {
  const med = (pick: (s: RunSample) => number | null) => {
    const values = samples.map(pick).filter((v): v is number => v !== null);
    return values.length === 0 ? null : median(values);
  };
  return {
    runner, messages: samples[0]!.messages, samples,
    msgPerSec: med((s) => s.msgPerSec)!, seconds: med((s) => s.seconds)!,
    cpuSeconds: med((s) => s.cpuSeconds), pythonCpuSeconds: med((s) => s.pythonCpuSeconds),
    nodeMb: med((s) => s.nodeMb), pythonMb: med((s) => s.pythonMb),
  };
}

/** Latency and restart runs count their own outputs: every message must come out exactly once, none as an error. */
function checkAllAnswered(what: string, r: { messages: number; outputs: number; errors: number }): void {
  if (r.outputs !== r.messages || r.errors !== 0) {
    throw new Error(`${what}: ${r.outputs} outputs and ${r.errors} errors for ${r.messages} messages (expected ${r.messages} outputs)`);
  }
}

loadBenchConfig(process.argv.slice(2)).then(main, (err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}).catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
