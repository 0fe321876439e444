/**
 * Ctrl-C and the truth of the summary: real CLI process, real Python servers. The first signal
 * drains what was taken and says where to resume; --skip resumes there; a second signal exits at
 * once and still says what was written. Also: keyless messages are warned about and counted, a
 * BOM on stdin is skipped.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createStage } from '../src/index.js';
import { jsonLines, runCli, startCli, summaryOf, type CliResult } from './support/cli-runner.js';
import { waitGone } from './support/processes.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';

const n = 20_000;
const input = Array.from({ length: n }, (_, i) => JSON.stringify({ key: `k${i % 10}`, seq: i })).join('\n') + '\n';
const slow = (ms: number) => ['run', '--python-path', fixtures, '--model', `s=${fixtures}slow.py`, '--model-options', `s={"ms":${ms}}`, '--partitions', '2'];

/** Start the CLI on `input`, send SIGINT once it has written an output line (and again once it logged the stop, if `twice`). */
async function interrupt(args: string[], twice: boolean): Promise<CliResult & { pids: number[] }> {
  const { child, done } = startCli([...args, '--log-level', 'info'], input);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (twice && /"msg":"stopping: no more input/.test(stderr) && !child.killed) child.kill('SIGINT');
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  process.kill(child.pid!, 'SIGINT');
  const result = await done;
  const pids = [...stderr.matchAll(/"serverPid":(\d+)[^\n]*"msg":"partition ready"/g)].map((m) => Number(m[1]));
  return { ...result, pids };
}

describe('interrupting pystage run', () => {
  test('Ctrl-C: exit 130, every message before resumeOffset written once, none after; --skip resumes exactly there', async () => {
    const first = await interrupt(slow(5), false);
    assert.equal(first.code, 130, first.stderr.slice(-2000));
    const summary = summaryOf(first.stderr);
    assert.equal(summary.interrupted, true);
    assert.ok(summary.resumeOffset > 0 && summary.resumeOffset < n, `resumeOffset ${summary.resumeOffset}`);
    assert.equal(summary.resumeOffset, summary.in);
    const offsets = jsonLines(first.stdout).map((o) => o.offset as number).sort((a, b) => a - b);
    assert.deepEqual(offsets, Array.from({ length: summary.resumeOffset }, (_, i) => i));
    assert.equal(summary.out, offsets.length);

    const rest = await runCli([...slow(0), '--skip', String(summary.resumeOffset)], input);
    assert.equal(rest.code, 0, rest.stderr.slice(-2000));
    const restSummary = summaryOf(rest.stderr);
    assert.equal(restSummary.interrupted, false);
    assert.equal(restSummary.skipped, summary.resumeOffset);
    const restOutputs = jsonLines(rest.stdout);
    // Offsets stay line numbers of the input: the two runs together cover it once.
    for (const o of restOutputs) assert.equal(o.output.seq, o.offset);
    const all = [...offsets, ...restOutputs.map((o) => o.offset as number)].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => i));
  });

  test('--errors FILE: a resumed run (--skip) appends to the first run\'s errors; a fresh run starts the file anew', async () => {
    const dir = tempDir('pystage-errors-');
    const file = join(dir, 'errors.jsonl');
    const lines = ['{"key":"a","seq":0}', 'not json 1', '{"key":"b","seq":2}', '{"key":"c","seq":3}', 'not json 4', '{"key":"d","seq":5}'];
    const args = ['run', '--model', `s=${fixtures}slow.py`, '--model-options', 's={"ms":0}', '--errors', file];
    // The first run got as far as offset 3 (as if interrupted there); the second resumes with --skip 3.
    assert.equal((await runCli(args, lines.slice(0, 3).join('\n') + '\n')).code, 0);
    assert.equal((await runCli([...args, '--skip', '3'], lines.join('\n') + '\n')).code, 0);
    const offsets = () => readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { offset: number }).offset);
    assert.deepEqual(offsets(), [1, 4]);
    assert.equal((await runCli(args, lines.join('\n') + '\n')).code, 0);
    assert.deepEqual(offsets(), [1, 4], 'without --skip the file is written afresh');
  });

  test('a second signal exits at once with the summary of what was written; the resume point is still exact', async () => {
    const result = await interrupt(slow(40), true);
    assert.equal(result.code, 130, result.stderr.slice(-2000));
    const summary = summaryOf(result.stderr);
    assert.equal(summary.interrupted, true);
    const outputs = jsonLines(result.stdout);
    assert.equal(summary.out, outputs.length, 'the summary counts exactly the lines written');
    const offsets = new Set(outputs.map((o) => o.offset as number));
    assert.equal(offsets.size, outputs.length);
    for (let i = 0; i < summary.resumeOffset; i++) assert.ok(offsets.has(i), `offset ${i} before resumeOffset ${summary.resumeOffset} was not written`);
    assert.ok(!offsets.has(summary.resumeOffset), 'resumeOffset itself was not written');
    assert.ok(result.pids.length === 2 && await waitGone(result.pids, 3000), `Python servers ${result.pids} outlived the second signal`);
  });

  test('read-ahead is bounded by time: a slow model does not get thousands of messages queued', async () => {
    const stage = await createStage({ models: [{ name: 's', file: `${fixtures}slow.py`, options: { ms: 10 } }], partitions: 1 });
    const messages = Array.from({ length: 3000 }, (_, i) => ({ key: 'k', seq: i }));
    let peak = 0;
    let outputs = 0;
    const sampler = setInterval(() => {
      const [p] = stage.load();
      if (outputs > 0) peak = Math.max(peak, p!.queued + p!.inFlight);
    }, 20);
    const run = (async () => {
      for await (const record of stage.process(messages)) {
        if (record.kind === 'output') outputs++;
        // Stop once the lane has settled at its limit; the drain then takes about maxInFlightMs.
        if (outputs === 300) void stage.close();
      }
    })();
    await run;
    clearInterval(sampler);
    await stage.close();
    // 1000 ms of a 10 ms model is about 100 messages (the count bound alone would let all 3000 wait).
    assert.ok(peak > 0 && peak < 600, `peak queued + in flight: ${peak}`);
    assert.equal(outputs, stage.stats().in, 'every message taken was finished');
    assert.ok(stage.stats().in < 3000);
  });
});

describe('keys and the first bytes of stdin', () => {
  test('--key naming a field no message has: one warning, keyless counted; a BOM before the first line is skipped', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: i, a: i, b: 1 })).join('\n') + '\n';
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const result = await runCli(['run', '--python-path', fixtures, '--model', `add=${fixtures}arith.py`, '--partitions', '2', '--key', 'user'],
      Buffer.concat([bom, Buffer.from(lines)]));
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.split('\n').filter((l) => l.includes('no \\"user\\" field'));
    assert.equal(warnings.length, 1, result.stderr);
    const summary = summaryOf(result.stderr);
    assert.equal(summary.keyless, 50);
    assert.equal(summary.errors, 0, 'the BOM did not make the first line bad');
    assert.equal(jsonLines(result.stdout).length, 50);

    const keyed = await runCli(['run', '--python-path', fixtures, '--model', `add=${fixtures}arith.py`, '--partitions', '2', '--key', 'id'], lines);
    assert.equal(summaryOf(keyed.stderr).keyless, 0);
    assert.ok(!keyed.stderr.includes('round-robin'));
  });
});
