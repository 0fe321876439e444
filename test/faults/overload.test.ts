/** Overload: a reader that stops, a slow model, a leaky model. Backpressure holds; nothing is lost. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createStage, type StageRecord } from '../../src/index.js';
import { jsonLines, startCli } from '../support/cli-runner.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

test('a stdout reader that stops for 5 s: stdin stops being read, memory stays bounded, nothing is lost', async () => {
  const n = 400_000;
  const { child, done } = startCli(['run', '--python-path', fixtures, '--model', `add=${fixtures}arith.py`, '--partitions', '2']);
  let accepted = 0;
  const writeAll = (async () => {
    for (let i = 0; i < n; i += 1000) {
      let chunk = '';
      for (let j = i; j < i + 1000; j++) chunk += `{"key":"k${j % 100}","a":${j},"b":1}\n`;
      if (!child.stdin!.write(chunk)) await new Promise((r) => child.stdin!.once('drain', r));
      accepted = i + 1000;
    }
    child.stdin!.end();
  })();
  // Stop reading stdout: the pipe fills, the CLI must stop reading stdin.
  child.stdout!.pause();
  const stdoutChunks: Buffer[] = [];
  await new Promise((r) => setTimeout(r, 5000));
  const acceptedWhilePaused = accepted;
  const rss = rssMb(child.pid!);
  child.stdout!.on('data', (c: Buffer) => stdoutChunks.push(c));
  child.stdout!.resume();
  await writeAll;
  const result = await done;
  assert.equal(result.code, 0, result.stderr.slice(-1000));
  assert.ok(acceptedWhilePaused < n / 2, `stdin kept being read while stdout was blocked: ${acceptedWhilePaused} of ${n} lines taken`);
  assert.ok(rss < 400, `node RSS ${rss.toFixed(0)} MB while the reader was stopped`);
  const outputs = jsonLines(Buffer.concat(stdoutChunks).toString('utf8'));
  assert.equal(outputs.length, n);
  assert.equal(new Set(outputs.map((o) => o.offset)).size, n);
});

test('a slow model and a leaky one: the stage stays responsive and backpressure bounds what is in flight', async () => {
  const stage = await createStage({
    partitions: 2, pythonPath: fixtures, logLevel: 'silent', maxInFlight: 64,
    models: [{ name: 'slow', file: 'slow_leaky.py', options: { delay: 0.002 } }],
  });
  let produced = 0;
  let maxAhead = 0;
  let consumed = 0;
  async function* feed() {
    for (let i = 0; i < 1500; i++) {
      produced++;
      maxAhead = Math.max(maxAhead, produced - consumed);
      yield { key: `k${i % 7}`, seq: i };
    }
  }
  const statusTimes: number[] = [];
  const probe = setInterval(() => {
    const t0 = performance.now();
    void stage.status().then(() => statusTimes.push(performance.now() - t0));
  }, 250);
  const records: StageRecord[] = [];
  for await (const r of stage.process(feed())) { consumed++; records.push(r); }
  clearInterval(probe);
  assert.equal(records.length, 1500);
  assert.ok(records.every((r) => r.kind === 'output'));
  // At most maxInFlight per partition plus one output queue's worth can be ahead of the consumer.
  assert.ok(maxAhead <= 2 * 64 + 2 * 64 + 2, `${maxAhead} messages were read ahead of the consumer`);
  assert.ok(statusTimes.length > 0, 'status answered while the stage was busy');
  await stage.close();
});
