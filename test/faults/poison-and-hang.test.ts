/** A message that kills its server (poison) and one that hangs: each becomes one error; the rest flows, in order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageFailure, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

test('a poison message and a hanging one become errors; everything else is processed', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 1000, maxAttempts: 2,
    models: [{ name: 'h', file: 'hostile.py' }],
  });
  const messages = Array.from({ length: 500 }, (_, i) => ({ key: 'same', seq: i, die: i === 100, hang: i === 300 }));
  const records = await collect(stage.process(messages));
  const errors = records.filter((r): r is StageFailure => r.kind === 'error');
  assert.deepEqual(errors.map((r) => [r.offset, r.error.code]).sort(), [[100, 'PYSTAGE_POISON_MESSAGE'], [300, 'PYSTAGE_POISON_MESSAGE']]);
  const outputs = records.filter((r): r is StageOutput => r.kind === 'output');
  assert.equal(outputs.length, 498);
  // One partition: outputs keep input order across the restarts.
  assert.deepEqual(outputs.map((o) => o.offset), Array.from({ length: 500 }, (_, i) => i).filter((i) => i !== 100 && i !== 300));
  // Both faults happened: the poison message killed its server maxAttempts (2) times, the hang hit the deadline.
  const causes = stage.stats().restartCauses;
  assert.ok((causes.closed ?? 0) + (causes['socket-error'] ?? 0) >= 2, JSON.stringify(causes));
  assert.ok((causes.timeout ?? 0) >= 1, JSON.stringify(causes));
  await stage.close();
});

