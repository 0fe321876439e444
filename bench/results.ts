/** The shape of one harness run's results: what bench/results/latest.json holds. */
import type { BenchConfig } from './bench-config.js';
import type { Machine } from './machine.js';
import type { ApiLatencyResult } from './measure-api.js';
import type { RestartResult, StartupResult } from './measure-recovery.js';
import type { RunSample } from './run-sample.js';
import type { Target } from './targets.js';

/** Medians over a runner's rounds. */
export interface RunnerSummary {
  runner: string;
  messages: number;
  samples: RunSample[];
  msgPerSec: number;
  seconds: number;
  cpuSeconds: number | null;
  pythonCpuSeconds: number | null;
  nodeMb: number | null;
  pythonMb: number | null;
}

export interface BenchResults {
  date: string;
  machine: Machine;
  config: BenchConfig;
  /** Runner names of the rows the ratios are taken for. */
  names: { cliDefault: string; apiDefault: string; pyloop: string; pythonShell: string; lockstep: string };
  throughput: RunnerSummary[];
  latency: { fixed: ApiLatencyResult; saturation: ApiLatencyResult };
  startup: StartupResult & { medianMs: number };
  restart: RestartResult & { medianMs: number };
  memory: { small: RunSample; large: RunSample; smallTotalMb: number; largeTotalMb: number; growth: number };
  targets: Target[];
}
