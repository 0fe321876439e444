/** bench/tools/context-cost.ts in miniature, so it cannot rot: every variant runs and answers every message (no timing asserted). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measure, variants } from '../bench/tools/context-cost.js';

test('context-cost bench: plain, state and request variants each produce one output per message', async () => {
  assert.deepEqual(variants.map((v) => v.name), ['plain', 'state', 'request']);
  for (const variant of variants) {
    const result = await measure(variant, 300, 1);
    assert.deepEqual([result.outputs, result.errors], [300, 0], variant.name);
    assert.ok(result.msgPerSec > 0);
  }
});
