/**
 * A slow reader bounds memory by bytes: outputs waiting to be read count against maxInFlightBytes with the
 * inputs, so the input waits for the reader, whatever the models return. Measured by counting (outputs
 * completed ahead of the reader, in bytes), not by time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../src/index.js';
import { fixtures } from './support/paths.js';

for (const ordered of [false, true]) {
  test(`100 KB outputs and a slow reader: what waits for it stays within a few maxInFlightBytes (ordered: ${ordered})`, async () => {
    const maxInFlightBytes = 1024 * 1024;
    const stage = await createStage({
      partitions: 2, pythonPath: fixtures, logLevel: 'silent', maxInFlightBytes, ordered,
      models: [{ name: 'e', file: 'echo_blob.py' }],
    });
    try {
      const blob = 'x'.repeat(100_000);
      const n = 200;
      let read = 0;
      let mostAhead = 0;
      for await (const record of stage.process(Array.from({ length: n }, (_, i) => ({ key: `k${i}`, blob })))) {
        assert.equal((record as StageOutput).output.length, blob.length);
        read++;
        // Completed (counted by the stage) but not yet read: each holds 100 KB of output and 100 KB of input.
        mostAhead = Math.max(mostAhead, stage.stats().out - read);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.equal(read, n);
      const aheadBytes = mostAhead * 2 * blob.length;
      // Per partition: what the room holds (maxInFlightBytes) and the tasks already in flight when it closed.
      assert.ok(aheadBytes <= 2 * 3 * maxInFlightBytes, `${mostAhead} outputs (${aheadBytes} bytes) were held for the reader`);
      // And the same stage takes input again once the reader is done: nothing stays counted.
      const again = [];
      for await (const record of stage.process([{ key: 'z', blob: 'y' }])) again.push(record);
      assert.equal(again.length, 1);
    } finally {
      await stage.close();
    }
  });
}
