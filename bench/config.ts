/**
 * The harnesses' configuration in one place: where the project's pieces are, the command line and
 * every size derived from it, where results go, and the one Python interpreter every runner uses.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UsageError } from '../src/api/errors.js';
import { resolvePython } from '../src/python/python-interpreter.js';

// Paths are resolved from the built file's location (dist/bench/).
/** The repository root (the directory holding package.json). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI. */
export const cliScript = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/** The built runners module, which is also the entry point of a child that runs one in-process measurement. */
export const runnersScript = fileURLToPath(new URL('./runners.js', import.meta.url));
/** The project's Python server. */
export const serverScript = fileURLToPath(new URL('../../py/server.py', import.meta.url));
/** The Python package root (holds `pystage`, which the sample models import). */
export const pyRoot = fileURLToPath(new URL('../../py/', import.meta.url));
/** The model every runner uses. */
export const modelFile = fileURLToPath(new URL('../../py/models/add.py', import.meta.url));
/** The directory of the model file (the servers' python path). */
export const modelsDir = fileURLToPath(new URL('../../py/models/', import.meta.url));
/** Python scripts of the baselines live in the source tree, not in dist/. */
export const baselinesDir = fileURLToPath(new URL('../../bench/baselines/', import.meta.url));
/** Where results files go: tracked ones (written only with --save) and untracked ones of every other run. */
export const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
/** The model's name in the stage, and the class the Python baselines load. */
export const modelName = 'add';
export const modelClass = 'Add';

/** Environment variable through which the harness hands its resolved interpreter to child processes. */
export const PYTHON_VARIABLE = 'PYSTAGE_BENCH_PYTHON';

/** The interpreter every runner uses (resolved once by `loadBenchConfig`, inherited by child processes). */
export function python(): string {
  return process.env[PYTHON_VARIABLE] ?? 'python3';
}

export interface BenchConfig {
  smoke: boolean;
  /** Messages per throughput run (CLI, API, baselines A and B). */
  messages: number;
  rounds: number;
  /** Where the JSON results go. */
  out: string;
  /** True when `out` is the tracked results file (--save). */
  save: boolean;
  /** The Python interpreter every runner uses, resolved once (see `loadBenchConfig`). */
  python: string;
  /** The stage's default partition count here (one per core). */
  defaultPartitions: number;
  /** Lockstep runs ~15× slower, so it gets a tenth of the messages, at most 20,000 (its rate is what is compared). */
  lockstepMessages: number;
  latency: { rate: number; messages: number; warmup: number; saturationMessages: number; lowRate: number; lowMessages: number; lowWarmup: number };
  startupSamples: number;
  restart: { partitions: number; kills: number; rate: number; gapMs: number };
  /** The flat-memory pair: the CLI at default partitions, once at each size, back to back. */
  memory: { small: number; large: number };
}

/** Which results a harness writes: its tracked file (in bench/results/) and the prefix of its untracked ones. */
export interface ResultsNames {
  script: string;
  tracked: string;
  untrackedPrefix: string;
}

/** The main harness's results: bench/results/latest.json with --save, else bench/results/run-<time>.json. */
export const mainResults: ResultsNames = { script: 'run.js', tracked: 'latest.json', untrackedPrefix: 'run' };

/**
 * Parse argv (without node and the script) into a config and resolve the interpreter through the
 * stage's own lookup: a version-manager shim (pyenv's is a bash script) costs hundreds of ms per
 * start, which would be charged to every server start and restart and to the baselines.
 * A bad command line rejects with UsageError, its message ending with the usage.
 */
export async function loadBenchConfig(argv: string[], names: ResultsNames = mainResults): Promise<BenchConfig> {
  const usage = `usage: node dist/bench/${names.script} [--messages N] [--rounds R] [--smoke] [--save | --out FILE] [--python PYTHON]`;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        messages: { type: 'string' },
        rounds: { type: 'string' },
        smoke: { type: 'boolean', default: false },
        save: { type: 'boolean', default: false },
        out: { type: 'string' },
        python: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`);
  }
  const smoke = values.smoke ?? false;
  const save = values.save ?? false;
  // The tracked file is what the READMEs quote: only a deliberate, full-size run may replace it.
  if (save && values.out !== undefined) throw new UsageError(`--save writes bench/results/${names.tracked}; it cannot be combined with --out\n${usage}`);
  if (save && smoke) throw new UsageError(`--save keeps a run the READMEs quote; smoke sizes are not one\n${usage}`);
  // 300,000 keeps the default run (3 rounds of 7 runners, latency, recovery, the memory pair) under 3 minutes on 2 cores.
  const messages = positive('--messages', values.messages, smoke ? 3_000 : 300_000, usage);
  const rounds = positive('--rounds', values.rounds, smoke ? 1 : 3, usage);
  const rate = 5_000;
  return {
    smoke, messages, rounds, save,
    python: await resolvePython(values.python ?? 'python3', 10_000),
    out: resolve(values.out ?? resolve(resultsDir, save ? names.tracked : untrackedName(names.untrackedPrefix))),
    defaultPartitions: availableParallelism(),
    lockstepMessages: Math.max(500, Math.min(20_000, Math.round(messages / 10))),
    latency: {
      rate,
      // 3 s measured after 0.5 s of warm-up (smoke: 0.5 s after 0.1 s).
      messages: rate * (smoke ? 0.6 : 3.5),
      warmup: rate * (smoke ? 0.1 : 0.5),
      saturationMessages: Math.min(messages, 200_000),
      // A nearly idle stage: what is left of the tail is not load.
      lowRate: 1_000,
      lowMessages: 1_000 * (smoke ? 0.6 : 3.5),
      lowWarmup: 1_000 * (smoke ? 0.1 : 0.5),
    },
    startupSamples: smoke ? 2 : 5,
    restart: { partitions: 2, kills: smoke ? 2 : 6, rate, gapMs: smoke ? 200 : 500 },
    // The issue's sizes (1M vs 4M): the node heap only reaches its steady size after ~1M messages,
    // so a smaller pair would report heap warm-up as growth.
    memory: smoke ? { small: 3_000, large: 12_000 } : { small: 1_000_000, large: 4_000_000 },
  };
}

/** `<prefix>-2026-11-30T08-19-04Z.json`: sortable, and matched by .gitignore's `bench/results/*.json`. */
function untrackedName(prefix: string): string {
  return `${prefix}-${new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.json`;
}

function positive(flag: string, text: string | undefined, fallback: number, usage: string): number {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${text}"\n${usage}`);
  return n;
}
