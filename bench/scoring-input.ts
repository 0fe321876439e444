/** The scoring bench's input (16 features per message) and the network computed here, to check outputs. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_COUNT } from './input-file.js';

/** The i-th message: 16 features in [-1, 1] with 4 decimals, a deterministic function of i. */
export function scoringMessageAt(i: number): { key: string; x: number[] } {
  const x: number[] = [];
  for (let j = 0; j < 16; j++) x.push(Math.round(Math.sin(i * 16 + j + 1) * 1e4) / 1e4);
  return { key: `acct-${i % KEY_COUNT}`, x };
}

/** Write `count` messages as JSON lines to `dir/scoring-<count>.jsonl`; returns the path. */
export function writeScoringInput(dir: string, count: number): string {
  const path = join(dir, `scoring-${count}.jsonl`);
  const fd = openSync(path, 'w');
  try {
    for (let start = 0; start < count; start += 10_000) {
      let chunk = '';
      for (let i = start; i < Math.min(count, start + 10_000); i++) chunk += JSON.stringify(scoringMessageAt(i)) + '\n';
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The weights file's contents. */
export interface ScoringWeights {
  w1: number[][];
  b1: number[];
  w2: number[][];
  b2: number[];
  w3: number[];
  b3: number;
}

export function scoringWeights(text: string): ScoringWeights {
  return JSON.parse(text) as ScoringWeights;
}

/** The network's score of message `i`, in plain TypeScript (ReLU, ReLU, sigmoid). */
export function referenceScore(w: ScoringWeights, i: number): number {
  const dense = (x: number[], m: number[][], b: number[]) => b.map((bias, j) => Math.max(0, x.reduce((sum, v, k) => sum + v * m[k]![j]!, bias)));
  const h = dense(dense(scoringMessageAt(i).x, w.w1, w.b1), w.w2, w.b2);
  const z = h.reduce((sum, v, k) => sum + v * w.w3[k]!, w.b3);
  return 1 / (1 + Math.exp(-z));
}
