/** An output too large to deliver fails its own message, naming the model and the limit; its batch goes on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

test('outputs over maxOutputBytes (a 300 MB string; escapes that grow six-fold) fail alone; the state does not change', async () => {
  const stage = await createStage({
    partitions: 1, pythonPath: fixtures, logLevel: 'silent', maxOutputBytes: 1_000_000, executeTimeoutMs: 5000,
    models: [{ name: 'big', file: 'big_output.py' }],
  });
  try {
    const messages = [
      { key: 'a', seq: 0, size: 10 },
      { key: 'a', seq: 1, size: 300_000_000 },
      // 20,000 strings of 10 control characters: 260 KB of characters, 1.26 MB of JSON.
      { key: 'a', seq: 2, size: 200_000, parts: true },
      { key: 'a', seq: 3, size: 10, count: true },
      { key: 'a', seq: 4, size: 200_000, parts: true, count: true },
      // Over the inline limit: runs alone as executeModel.
      { key: 'a', seq: 5, size: 300_000_000, pad: 'p'.repeat(1_200_000) },
      { key: 'a', seq: 6, size: 10 },
    ];
    const records = await collect(stage.process(messages));
    records.sort((x, y) => x.offset - y.offset);
    assert.deepEqual(records.map((r) => r.kind === 'output' ? (r as StageOutput).output.seq : `${r.error.type}/${r.error.model}`),
      [0, 'OutputTooLarge/big', 'OutputTooLarge/big', 3, 'OutputTooLarge/big', 'OutputTooLarge/big', 6]);
    for (const r of records) if (r.kind === 'error') assert.match(r.error.message, /over the limit of 1000000 bytes \(--max-output-bytes, maxOutputBytes\)/);
    const bySeq = (seq: number) => records[seq]!.kind === 'error' ? (records[seq] as { error: { message: string } }).error.message : '';
    assert.match(bySeq(1), /at least 3000000\d\d bytes/, 'refused before encoding');
    assert.match(bySeq(2), /output of 12\d{5} bytes/, 'refused once encoded');
    assert.match(bySeq(5), /model 'big' returned/);
    assert.deepEqual(stage.state(0), { big: { a: 1 } }, 'the refused message changed nothing');
    assert.deepEqual(stage.stats().restartCauses, {}, 'no time spent on it was taken for a hang');
  } finally {
    await stage.close();
  }
});
