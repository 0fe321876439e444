/**
 * The CLI's progress line: every few seconds one JSON line on stderr (never stdout) with the
 * counters so far, the rate over the last interval, restarts, and each partition's queue depth.
 */
import type { Stage } from '../api/stage.js';

/** Writes `{"progress":{...}}` lines every `intervalMs` until stopped. */
export class ProgressLine {
  private timer: NodeJS.Timeout | null = null;
  private lastIn = 0;
  private lastAt = 0;

  /** `extra`: fields of the code around the stage (shard mode's ownership), added to each line. */
  constructor(private readonly stage: Stage, private readonly intervalMs: number, private readonly write: (line: string) => void,
    private readonly extra: () => object = () => ({})) {}

  start(): void {
    this.lastAt = performance.now();
    this.lastIn = this.stage.stats().in;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // Progress never keeps the process alive on its own.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const stats = this.stage.stats();
    const now = performance.now();
    const rate = (stats.in - this.lastIn) / ((now - this.lastAt) / 1000);
    this.lastIn = stats.in;
    this.lastAt = now;
    const load = this.stage.load();
    this.write(JSON.stringify({
      progress: {
        in: stats.in, out: stats.out, noOutput: stats.noOutput, errors: stats.errors, msgPerSec: Math.round(rate),
        restarts: stats.restarts, seconds: Math.round(stats.seconds), queued: load.map((p) => p.queued), inFlight: load.map((p) => p.inFlight),
        ...this.extra(),
      },
    }) + '\n');
  }
}
