/**
 * The CLI's progress line on stderr (never stdout) every few seconds: the counters so far, the rate
 * over the last interval, restarts, and the partitions' queues. On a terminal it is one human line
 * rewritten in place; into a file or a pipe (`--progress`) one JSON line per interval, for programs.
 */
import type { Stage } from '../api/stage.js';

/** What one progress report holds. */
interface Progress {
  in: number;
  out: number;
  noOutput: number;
  errors: number;
  msgPerSec: number;
  restarts: number;
  seconds: number;
  queued: number[];
  inFlight: number[];
}

/** Clear the terminal's current line and go back to its start (ANSI "erase line"). */
const CLEAR_LINE = '\r\x1b[2K';

/** Writes a progress report every `intervalMs` until stopped: `human` on a terminal, else `{"progress":{...}}` lines. */
export class ProgressLine {
  private timer: NodeJS.Timeout | null = null;
  private lastIn = 0;
  private lastAt = 0;
  private shown = false;

  constructor(
    private readonly stage: Stage,
    private readonly intervalMs: number,
    private readonly write: (text: string) => void,
    private readonly human = false,
    /** Fields of the code around the stage (shard mode's ownership), added to each JSON line. */
    private readonly extra: () => object = () => ({}),
  ) {}

  /**
   * The progress of a CLI run on stderr, or null: shown when `forced` (--progress) or, unless forced off
   * (--no-progress), when stderr is a terminal; human on a terminal, JSON into a file or pipe.
   */
  static onStderr(stage: Stage, forced: boolean | null, intervalMs: number, extra?: () => object): ProgressLine | null {
    const terminal = process.stderr.isTTY === true;
    if (!(forced ?? terminal)) return null;
    return new ProgressLine(stage, intervalMs, (text) => process.stderr.write(text), terminal, extra);
  }

  start(): void {
    this.lastAt = performance.now();
    this.lastIn = this.stage.stats().in;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    // Progress never keeps the process alive on its own.
    this.timer.unref();
  }

  /** Stop; on a terminal the line is cleared, so what follows (the summary) starts on a clean line. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.write(CLEAR_LINE);
    this.shown = false;
  }

  private tick(): void {
    const stats = this.stage.stats();
    const now = performance.now();
    const rate = (stats.in - this.lastIn) / ((now - this.lastAt) / 1000);
    this.lastIn = stats.in;
    this.lastAt = now;
    const load = this.stage.load();
    const progress: Progress = {
      in: stats.in, out: stats.out, noOutput: stats.noOutput, errors: stats.errors, msgPerSec: Math.round(rate),
      restarts: stats.restarts, seconds: Math.round(stats.seconds), queued: load.map((p) => p.queued), inFlight: load.map((p) => p.inFlight),
    };
    if (!this.human) {
      this.write(JSON.stringify({ progress: { ...progress, ...this.extra() } }) + '\n');
      return;
    }
    this.write(CLEAR_LINE + humanLine(progress));
    this.shown = true;
  }
}

/** `pystage 0:42  in 12,345  out 12,001  no output 3  errors 2  812 msg/s  queued 40  in flight 96  restarts 1` */
function humanLine(p: Progress): string {
  const n = (value: number) => value.toLocaleString('en-US');
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const clock = `${Math.floor(p.seconds / 60)}:${String(p.seconds % 60).padStart(2, '0')}`;
  return `pystage ${clock}  in ${n(p.in)}  out ${n(p.out)}  no output ${n(p.noOutput)}  errors ${n(p.errors)}  ${n(p.msgPerSec)} msg/s`
    + `  queued ${n(sum(p.queued))}  in flight ${n(sum(p.inFlight))}  restarts ${n(p.restarts)}`;
}
