/**
 * An input for `stage.process` that offers messages at a fixed rate (or as fast as the stage
 * pulls them) and stamps the moment each one is handed over, for push → output latency.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { messageAt, type BenchMessage } from './input-file.js';

/** Offers up to `capacity` messages; message i is `messageAt(i)` and is pushed at `pushedAt[i]`. */
export class PacedSource implements AsyncIterable<BenchMessage> {
  readonly pushedAt: Float64Array;
  /** Messages handed over so far; the next one has this offset. */
  pushed = 0;
  private stopped = false;
  private startedAt = 0;

  /** `rate` in messages per second, or null for "as fast as pulled" (saturation). */
  constructor(readonly capacity: number, private readonly rate: number | null) {
    this.pushedAt = new Float64Array(capacity);
  }

  /** End the input after the message being handed over now. */
  stop(): void {
    this.stopped = true;
  }

  /** Messages per second actually offered (timers are late sometimes; the report shows it). */
  achievedRate(): number {
    if (this.pushed < 2) return 0;
    return (this.pushed - 1) / ((this.pushedAt[this.pushed - 1]! - this.startedAt) / 1000);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<BenchMessage> {
    const interval = this.rate === null ? 0 : 1000 / this.rate;
    this.startedAt = performance.now();
    for (let i = 0; i < this.capacity && !this.stopped; i++) {
      if (interval > 0) {
        // Timers have ~1 ms resolution, so at 5,000 msg/s messages leave in small bursts of those due.
        const wait = this.startedAt + i * interval - performance.now();
        if (wait > 0) await sleep(wait);
      }
      const message = messageAt(i);
      this.pushedAt[i] = performance.now();
      this.pushed = i + 1;
      yield message;
    }
  }
}
