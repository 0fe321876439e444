/** SIGKILL random Python servers every ~200 ms during a long run: nothing lost, nothing doubled, per-key order kept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStage, type StageOutput } from '../../src/index.js';
import { fixtures } from '../support/paths.js';
import { closeLeavingNoServer, serverPids } from '../support/stage-faults.js';

test('a crash storm during 200,000 messages: every input accounted for exactly once, outputs right, per-key order intact', async () => {
  const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'add', file: 'arith.py' }] });
  const n = 200_000;
  // Harsher than support/kill-storm.ts on purpose: a random server every 200 ms, without waiting for the restart.
  let kills = 0;
  const storm = setInterval(() => {
    const pids = serverPids(stage);
    const victim = pids[Math.floor(Math.random() * pids.length)];
    if (victim !== undefined) {
      try { process.kill(victim, 'SIGKILL'); kills++; } catch { /* already gone */ }
    }
  }, 200);
  const lastSeqOfKey = new Map<string, number>();
  const seen = new Uint8Array(n);
  let count = 0;
  try {
    const messages = (function* () {
      for (let i = 0; i < n; i++) yield { key: `k${i % 997}`, a: i, b: i % 5, seq: i };
    })();
    for await (const r of stage.process(messages)) {
      assert.equal(r.kind, 'output', JSON.stringify(r));
      const o = r as StageOutput;
      assert.equal(seen[o.offset], 0, `offset ${o.offset} emitted twice`);
      seen[o.offset] = 1;
      count++;
      assert.deepEqual(o.output, { r: o.offset + (o.offset % 5), seq: o.offset });
      const key = o.key as string;
      assert.ok((lastSeqOfKey.get(key) ?? -1) < o.offset, `key ${key}: offset ${o.offset} after a later one`);
      lastSeqOfKey.set(key, o.offset);
    }
  } finally {
    clearInterval(storm);
  }
  assert.equal(count, n);
  assert.ok(kills >= 3, `the storm killed ${kills} servers`);
  // The restarts were for the kills: connections cut by a dead server, never a deadline or a bad frame.
  const causes = stage.stats().restartCauses;
  assert.ok((causes.closed ?? 0) + (causes['socket-error'] ?? 0) >= 3, JSON.stringify(causes));
  assert.deepEqual(Object.keys(causes).filter((c) => c !== 'closed' && c !== 'socket-error'), [], JSON.stringify(causes));
  await closeLeavingNoServer(stage);
});
