/** The benchmark input: JSON lines with 1,000 distinct keys, and the same messages as objects for the API. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

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
