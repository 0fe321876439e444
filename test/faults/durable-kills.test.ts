/**
 * Exactly-once file output across SIGKILL: a --state-dir run with --input and --output is killed at
 * several moments (node alone, or node with all its servers), then the same command is run again until it
 * finishes; its files must hold what one uninterrupted run writes, and its stored counters the same.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSameLines, counterInput, fileLines, killAt, makeJob, runJob, storedState, summaryOf, type Job } from '../support/durable-job.js';

const COUNT = 1500;
const input = counterInput(COUNT, 13, 0.001);

async function reference(): Promise<Job> {
  const ref = makeJob(input);
  const result = await runJob(ref);
  assert.equal(result.code, 0, result.stderr);
  return ref;
}

/** Kill the job once its output holds each of `fractions` of the reference's lines, then run it to the end. */
async function killAndResume(job: Job, ref: Job, fractions: number[], group: boolean): Promise<{ kills: number; resumedFrom: number }> {
  const total = fileLines(ref.output).length;
  let kills = 0;
  for (const fraction of fractions) {
    const { killed } = await killAt(job, Math.floor(total * fraction), group);
    if (killed) kills++;
  }
  const last = await runJob(job);
  assert.equal(last.code, 0, last.stderr);
  return { kills, resumedFrom: summaryOf(last.stderr).skipped ?? 0 };
}

/** Kills at `fractions` of the output, then the same command to the end; the files and counters match the reference. */
async function killsThenResume(interval: string, fractions: number[], group: boolean): Promise<void> {
  const ref = await reference();
  const job = makeJob(input, ['--checkpoint-interval', interval]);
  const { kills, resumedFrom } = await killAndResume(job, ref, fractions, group);
  assert.ok(kills >= fractions.length - 1, `the runs were killed (${kills} of ${fractions.length} kills landed before the run finished)`);
  assert.ok(resumedFrom > 0, 'the last run resumed from a checkpoint (it skipped input lines)');
  assertSameLines(job, ref);
  assert.deepEqual(await storedState(job.state), await storedState(ref.state));
}

test('SIGKILL of node at several moments, then the same command until it finishes: every line once, counters exact', () =>
  killsThenResume('100', [0.15, 0.4, 0.65, 0.9], false));

test('SIGKILL of node and all its servers at once (the process group): every line once, counters exact', () =>
  killsThenResume('150', [0.3, 0.7], true));

test('a kill before the first checkpoint: the next run starts over and still writes every line once', async () => {
  const ref = await reference();
  const job = makeJob(input, ['--checkpoint-interval', '600000']);
  const { killed } = await killAt(job, 200, true);
  assert.ok(killed, 'the run was killed');
  assert.ok(fileLines(job.output).length >= 200, 'it had written lines before it was killed');
  assert.deepEqual(await storedState(job.state), [], 'no checkpoint was taken');
  const last = await runJob(job);
  assert.equal(last.code, 0, last.stderr);
  assert.equal(summaryOf(last.stderr).skipped, undefined, 'nothing to resume: the run started over');
  assertSameLines(job, ref);
  assert.deepEqual(await storedState(job.state), await storedState(ref.state));
});
