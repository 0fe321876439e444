/**
 * A reply that arrives whole but cannot be handled (its State is not an array of entries) fails exactly
 * its message (PYSTAGE_UNUSABLE_REPLY) and changes no state; the connection is given up as `rewind`, the
 * server restored, the requests after it resent; the worker thread lives, the state stays exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

for (const path of ['executeModel (a message over the inline limit)', 'executeBatch']) {
  test(`a malformed State on an ${path} reply: its message fails alone, one rewind, no thread death, state exact`, async () => {
    const big = path.startsWith('executeModel');
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', inlineLimit: 1024,
      models: [{ name: 's', file: 'bad_state.py' }],
    });
    try {
      const messages = Array.from({ length: 20 }, (_, i) => i === 10 ? { key: 'a', badState: true, ...(big ? { blob: 'x'.repeat(2000) } : {}) } : { key: 'a' });
      const records = await collect(stage.process(messages));
      // The malformed reply's messages fail (the message itself; on the batch path, the whole batch it came
      // in), their writes undone: the outputs count 1, 2, 3 ... in order with no gap, whatever the batching.
      const codes = records.map((r) => r.kind === 'output' ? (r as StageOutput).output.n : r.error.code);
      const counts = codes.filter((c): c is number => typeof c === 'number');
      assert.equal(codes[10], 'PYSTAGE_UNUSABLE_REPLY');
      assert.ok(codes.every((c) => typeof c === 'number' || c === 'PYSTAGE_UNUSABLE_REPLY'), String(codes));
      assert.deepEqual(counts, Array.from({ length: counts.length }, (_, i) => i + 1));
      if (big) assert.equal(counts.length, 19, 'executeModel: only the one message failed');
      const stats = stage.stats();
      // The fault is proven by the message's code above; a reconnect follows when something was left to send.
      if (big) assert.deepEqual(stats.reconnectCauses, { rewind: 1 }, 'the unusable reply cost one reconnect, by its cause');
      else assert.ok(Object.keys(stats.reconnectCauses).every((cause) => cause === 'rewind'), JSON.stringify(stats.reconnectCauses));
      assert.deepEqual(stats.restartCauses, {}, 'no server restart and no worker thread lost');
      assert.deepEqual(stage.state(0), counts.length === 0 ? {} : { s: { a: counts.length } });
    } finally {
      await stage.close();
    }
  });
}
