/** Overload: a reader that stops, a slow model, a leaky model. Backpressure holds; nothing is lost. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createStage, type StageRecord } from '../../src/index.js';
import { jsonLines, startCli } from '../support/cli-runner.js';
import { fixtures } from '../support/paths.js';

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

/** How long `call` takes to settle, in ms. */
async function timed(call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await call();
  return performance.now() - t0;
}

test('a slow model and a leaky one: the stage stays responsive and backpressure bounds what is in flight', async () => {
  const maxInFlight = 64;
  const n = 1500;
  const stage = await createStage({
    partitions: 2, pythonPath: fixtures, logLevel: 'silent', maxInFlight,
    models: [{ name: 'slow', file: 'slow_leaky.py', options: { delay: 0.002 } }],
  });
  // The idle baseline, from the same stage on the same machine a moment earlier: the median of five.
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) idle.push(await timed(() => stage.status()));
  const idleMs = idle.sort((a, b) => a - b)[2]!;
  let produced = 0;
  let maxAhead = 0;
  let consumed = 0;
  async function* feed() {
    for (let i = 0; i < n; i++) {
      produced++;
      maxAhead = Math.max(maxAhead, produced - consumed);
      yield { key: `k${i % 7}`, seq: i };
    }
  }
  const busy: Promise<number>[] = [];
  const started = performance.now();
  const probe = setInterval(() => busy.push(timed(() => stage.status())), 250);
  const records: StageRecord[] = [];
  for await (const r of stage.process(feed())) { consumed++; records.push(r); }
  const runMs = performance.now() - started;
  clearInterval(probe);
  // Awaited after the run, so a status held back until the stream ended is measured too, not dropped.
  const busyMs = await Promise.all(busy);
  assert.equal(records.length, n);
  assert.ok(records.every((r) => r.kind === 'output'));
  // At most maxInFlight per partition plus one output queue's worth can be ahead of the consumer.
  assert.ok(maxAhead <= 2 * maxInFlight + 2 * maxInFlight + 2, `${maxAhead} messages were read ahead of the consumer`);
  // The server is single-threaded, so a status waits behind the messages already sent to it (at most maxInFlight)
  // but never behind the rest of the stream. This run's own pace prices that window: the busier partition took
  // at least n / 2 messages in runMs. Three times idle plus window is generous; waiting for the stream is far more.
  assert.ok(busyMs.length >= 3, `${busyMs.length} status calls while the stage was busy`);
  const windowMs = maxInFlight * runMs / (n / 2);
  const worst = Math.max(...busyMs);
  assert.ok(worst <= 3 * (idleMs + windowMs),
    `a status took ${worst.toFixed(0)} ms under load; idle ${idleMs.toFixed(1)} ms, ${maxInFlight} messages in flight take about ${windowMs.toFixed(0)} ms, the run ${runMs.toFixed(0)} ms`);
  await stage.close();
});
