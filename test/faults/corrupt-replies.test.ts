/** Corrupt bytes in the reply stream (a truncated frame, a bad checksum): reconnect, resend, lose and double nothing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

for (const mode of ['truncated', 'checksum']) {
  test(`a ${mode} frame written into the reply stream by the server side`, async () => {
    const stage = await createStage({
      partitions: 2, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 2000,
      models: [{ name: 'c', file: 'corrupting.py', options: { mode } }],
    });
    const n = 5000;
    const records = await collect(stage.process(Array.from({ length: n }, (_, i) => ({ key: `k${i % 31}`, seq: i, a: i }))));
    const offsets = records.map((r) => {
      assert.equal(r.kind, 'output', JSON.stringify(r));
      assert.deepEqual((r as StageOutput).output, { seq: r.offset, a: r.offset });
      return r.offset;
    });
    assert.equal(new Set(offsets).size, n, 'no output duplicated');
    assert.equal(offsets.length, n, 'no output lost');
    // The fault happened: each server (one per partition) wrote its junk once, and each connection was
    // replaced by a reconnect to the same live server for a rejected frame, never by a restart.
    const stats = stage.stats();
    assert.deepEqual(stats.reconnectCauses, { 'bad-frame': 2 });
    assert.deepEqual(stats.restartCauses, {});
    await stage.close();
  });
}
