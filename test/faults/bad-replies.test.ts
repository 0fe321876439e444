/**
 * A reply that arrives whole but cannot be handled (its State is not an array of entries) is refused like a
 * bad frame: the connection is replaced, the request resent, the worker thread lives, the state stays exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

for (const path of ['executeModel (a message over the inline limit)', 'executeBatch']) {
  test(`a malformed State on an ${path} reply: a reconnect for a bad frame, no thread death, state exact`, async () => {
    const big = path.startsWith('executeModel');
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', inlineLimit: 1024,
      models: [{ name: 's', file: 'bad_state.py' }],
    });
    try {
      const messages = Array.from({ length: 20 }, (_, i) => i === 10 ? { key: 'a', badState: true, ...(big ? { blob: 'x'.repeat(2000) } : {}) } : { key: 'a' });
      const records = await collect(stage.process(messages));
      assert.deepEqual(records.map((r) => r.kind === 'output' ? (r as StageOutput).output.n : r.error.code), Array.from({ length: 20 }, (_, i) => i + 1));
      const stats = stage.stats();
      assert.deepEqual(stats.reconnectCauses, { 'bad-frame': 1 }, 'the refused reply cost one reconnect');
      assert.deepEqual(stats.restartCauses, {}, 'no server restart and no worker thread lost');
      assert.deepEqual(stage.state(0), { s: { a: 20 } });
    } finally {
      await stage.close();
    }
  });
}
