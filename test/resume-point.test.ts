/** The resume point: the lowest offset not yet written, whatever order partitions finish in. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResumePoint } from '../src/cli/resume-point.js';
import { seededRandom } from './support/seeded-random.js';

test('advances over the written prefix only, across window growth and slides', () => {
  const random = seededRandom(9);
  for (const first of [0, 1234]) {
    const n = 50_000;
    // Written in shuffled chunks, as partitions interleave: a big random window of out-of-order offsets.
    const order = Array.from({ length: n }, (_, i) => first + i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.max(0, i - Math.floor(random() * 20_000));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const point = new ResumePoint(first);
    const written = new Set<number>();
    let expected = first;
    order.forEach((offset, k) => {
      point.mark(offset);
      written.add(offset);
      while (written.has(expected)) expected++;
      if (k % 997 === 0 || k === n - 1) assert.equal(point.offset, expected, `after ${k + 1} marks`);
    });
    assert.equal(point.offset, first + n);
  }
});
