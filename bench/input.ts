/**
 * The benchmark input: JSON lines with 1,000 distinct keys, the same messages as objects for the API,
 * and a source that offers them at a fixed rate, stamping each, for push → output latency.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** One benchmark message; a deterministic function of its index so every runner sees the same data. */
export interface BenchMessage {
  key: string;
  a: number;
  b: number;
  seq: number;
}

/** Distinct keys: enough to spread evenly over any partition count. */
export const KEY_COUNT = 1000;

/** The i-th message of every input. */
export function messageAt(i: number): BenchMessage {
  return { key: `acct-${i % KEY_COUNT}`, a: i % 10007, b: (i * 31) % 997, seq: i };
}

/** Messages 0..count-1 as objects, generated lazily so a big run holds none of them in memory. */
export function* messages(count: number): Generator<BenchMessage> {
  for (let i = 0; i < count; i++) yield messageAt(i);
}

/** Write `count` messages as JSON lines to `dir/input-<count>.jsonl`; returns the path and its size. */
export function writeInputFile(dir: string, count: number): { path: string; bytes: number } {
  const path = join(dir, `input-${count}.jsonl`);
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    // Chunks of 10,000 lines: few syscalls, bounded memory for any size.
    for (let start = 0; start < count; start += 10_000) {
      let chunk = '';
      for (let i = start; i < Math.min(count, start + 10_000); i++) chunk += JSON.stringify(messageAt(i)) + '\n';
      bytes += writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return { path, bytes };
}

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
