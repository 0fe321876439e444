/** The harness's command line and every size derived from it, in one place. */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './paths.js';

export interface BenchConfig {
  smoke: boolean;
  /** Messages per throughput run (CLI, API, baselines A and B). */
  messages: number;
  rounds: number;
  /** Where the JSON results go. */
  out: string;
  /** The Python interpreter every runner uses, as an absolute path. */
  python: string;
  /** The stage's default partition count here (one per core). */
  defaultPartitions: number;
  /** Lockstep runs ~15× slower, so it gets a tenth of the messages, at most 20,000 (its rate is what is compared). */
  lockstepMessages: number;
  latency: { rate: number; messages: number; warmup: number; saturationMessages: number };
  startupSamples: number;
  restart: { partitions: number; kills: number; rate: number; gapMs: number };
  /** The flat-memory pair: the CLI at default partitions, once at each size, back to back. */
  memory: { small: number; large: number };
}

const usage = 'usage: node dist/bench/run.js [--messages N] [--rounds R] [--smoke] [--out FILE] [--python PYTHON]';

/** Parse argv (without node and the script) into a config; throws with the usage on bad flags. */
export function parseBenchArgs(argv: string[]): BenchConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        messages: { type: 'string' },
        rounds: { type: 'string' },
        smoke: { type: 'boolean', default: false },
        out: { type: 'string' },
        python: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`);
  }
  const smoke = values.smoke ?? false;
  // 300,000 keeps the default run (3 rounds of 7 runners, latency, recovery, the memory pair) under 3 minutes on 2 cores.
  const messages = positive('--messages', values.messages, smoke ? 3_000 : 300_000);
  const rounds = positive('--rounds', values.rounds, smoke ? 1 : 3);
  const rate = 5_000;
  return {
    smoke, messages, rounds,
    python: resolvePython(values.python ?? 'python3'),
    out: resolve(values.out ?? resolve(repoRoot, 'bench/results/latest.json')),
    defaultPartitions: availableParallelism(),
    lockstepMessages: Math.max(500, Math.min(20_000, Math.round(messages / 10))),
    latency: {
      rate,
      // 3 s measured after 0.5 s of warm-up (smoke: 0.5 s after 0.1 s).
      messages: rate * (smoke ? 0.6 : 3.5),
      warmup: rate * (smoke ? 0.1 : 0.5),
      saturationMessages: Math.min(messages, 200_000),
    },
    startupSamples: smoke ? 2 : 5,
    restart: { partitions: 2, kills: smoke ? 2 : 6, rate, gapMs: smoke ? 200 : 500 },
    // The sizes (1M vs 4M): the node heap only reaches its steady size after ~1M messages,
    // so a smaller pair would report heap warm-up as growth.
    memory: smoke ? { small: 3_000, large: 12_000 } : { small: 1_000_000, large: 4_000_000 },
  };
}

function positive(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got "${text}"\n${usage}`);
  return n;
}

/**
 * The real interpreter behind `name`. A version-manager shim (pyenv's is a bash script) can cost
 * hundreds of ms per start, which would be charged to every server start and restart and to the
 * baselines; the harness measures pystage and Python, so it runs the interpreter directly.
 */
function resolvePython(name: string): string {
  try {
    return execFileSync(name, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch (err) {
    throw new Error(`cannot run Python "${name}": ${(err as Error).message}`);
  }
}
