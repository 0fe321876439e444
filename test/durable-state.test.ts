/**
 * --state-dir with the real server and a real LMDB store in a temporary folder: what a resume point
 * refuses, what a finished run carries into the next, repartitioning, `pystage state`, and a damaged or
 * foreign DIR. (The kills are in test/faults/durable-kills.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, startCli, summaryOf } from './support/cli-runner.js';
import { fixtures } from './support/paths.js';
import { tempDir } from './support/temp-dirs.js';
import { counterInput, counterModel, cutShort, fileLines, makeJob, runJob, storedState } from './support/durable-job.js';

const slowInput = counterInput(1200, 5, 0.002);

/** Per key, how many messages the counter model counts (written out from the input, not by the stage). */
function counted(input: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of input.split('\n')) {
    let msg: Record<string, unknown>;
    try { msg = JSON.parse(line); } catch { continue; }
    if (typeof msg.key !== 'string' || msg.fail) continue;
    counts.set(msg.key, (counts.get(msg.key) ?? 0) + 1);
  }
  return counts;
}

function stateCounts(lines: string[]): Map<string, number> {
  return new Map(lines.map((l) => JSON.parse(l)).map((e: { key: string; value: number }) => [e.key, e.value]));
}

test('after a cut-short run, another input, partition count or model set is refused with exit 2 saying what differs', async () => {
  const job = makeJob(slowInput, ['--checkpoint-interval', '100']);
  await cutShort(job, 200);
  const changedInput = join(job.dir, 'other.jsonl');
  writeFileSync(changedInput, '{"key":"x","i":-1}\n' + slowInput);
  const other = await runCli(job.args.map((a) => (a === job.input ? changedInput : a)));
  assert.equal(other.code, 2, other.stderr);
  assert.match(other.stderr, /input's beginning differs/);
  const partitions = await runCli(job.args.map((a) => (a === '2' ? '3' : a)));
  assert.equal(partitions.code, 2, partitions.stderr);
  assert.match(partitions.stderr, /partitions: 2 then, 3 now/);
  const models = await runJob(job, ['--model', `d=${fixtures}keyed_counter.py`]);
  assert.equal(models.code, 2, models.stderr);
  assert.match(models.stderr, /models: c then, c,d now/);
  // The refusals changed nothing: the same command still resumes and finishes.
  const same = await runJob(job);
  assert.equal(same.code, 0, same.stderr);
  assert.ok(summaryOf(same.stderr).skipped > 0, 'it resumed');
  assert.deepEqual(stateCounts(await storedState(job.state)), counted(slowInput));
});

test('--new-input keeps a cut-short run\'s state and takes the input as new; --reset-state starts empty', async () => {
  const job = makeJob(slowInput, ['--checkpoint-interval', '100']);
  await cutShort(job, 300);
  const before = stateCounts(await storedState(job.state));
  assert.ok(before.size > 0, 'the cut-short run checkpointed some state');
  const fresh = await runJob(job, ['--new-input']);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.equal(summaryOf(fresh.stderr).skipped, undefined, 'nothing skipped: the input is new');
  const want = counted(slowInput);
  const after = stateCounts(await storedState(job.state));
  for (const [key, n] of want) assert.equal(after.get(key), (before.get(key) ?? 0) + n, key);
  const reset = await runJob(job, ['--reset-state']);
  assert.equal(reset.code, 0, reset.stderr);
  assert.deepEqual(stateCounts(await storedState(job.state)), want);
});

test('a finished run\'s state carries into the next run, which takes the same file as new input', async () => {
  const input = counterInput(400, 4);
  const job = makeJob(input);
  const first = await runJob(job);
  assert.equal(first.code, 0, first.stderr);
  const second = await runJob(job);
  assert.equal(second.code, 0, second.stderr);
  const want = counted(input);
  // The second run's outputs count on from the first run's totals: key k's first output is total + 1.
  const firsts = new Map<string, number>();
  for (const line of fileLines(job.output)) {
    const { output } = JSON.parse(line);
    if (!firsts.has(output.key)) firsts.set(output.key, output.n);
  }
  for (const [key, n] of want) assert.equal(firsts.get(key), n + 1, `${key}; first run: ${first.stderr.slice(-600)}; second: ${second.stderr.slice(-600)}`);
  assert.deepEqual(stateCounts(await storedState(job.state)), new Map([...want].map(([k, n]) => [k, 2 * n])));
});

test('--repartition-state from 2 to 3 partitions: each key moves to its partition, counters exact; without it, refused', async () => {
  const input = counterInput(600, 11);
  const job = makeJob(input);
  assert.equal((await runJob(job)).code, 0);
  const three = job.args.map((a) => (a === '2' ? '3' : a));
  const refused = await runCli(three);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /holds the state of 2 partitions, and this stage has 3/);
  const moved = await runCli([...three, '--repartition-state']);
  assert.equal(moved.code, 0, moved.stderr);
  const want = counted(input);
  const entries = (await storedState(job.state)).map((l) => JSON.parse(l) as { partition: number; key: string; value: number });
  assert.deepEqual(new Map(entries.map((e) => [e.key, e.value])), new Map([...want].map(([k, n]) => [k, 2 * n])));
  // Every key's state sits in the partition the 3-partition run sent that key's messages to.
  const partitionOf = new Map(fileLines(job.output).map((l) => JSON.parse(l)).map((r) => [r.key, r.partition]));
  for (const e of entries) assert.equal(e.partition, partitionOf.get(e.key), e.key);
  assert.ok(new Set(entries.map((e) => e.partition)).size === 3, 'the keys spread over all three partitions');
});

test('pystage state prints the stored entries, values byte for byte, filtered by --model and --partition', async () => {
  const dir = tempDir('pystage-state-cmd-');
  const state = join(dir, 'state');
  const input = [
    '{"key":"big","v":123456789012345678901234567890}',
    '{"key":"ctl\\u0001\\ud83d\\ude00","v":{"a":[1,2.50,"x"]}}',
    '{"key":"plain","v":"text"}',
  ].join('\n') + '\n';
  const run = await runCli(['run', '--model', `w=${fixtures}state_writer.py`, '--model', `o=${fixtures}state_writer.py`, '--partitions', '1', '--state-dir', state], input);
  assert.equal(run.code, 0, run.stderr);
  const all = await runCli(['state', state]);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 6);
  assert.ok(lines.includes('{"partition":0,"model":"w","key":"big","value":123456789012345678901234567890}'), all.stdout);
  // The key keeps its control character and its astral character (stored as its JSON text).
  const odd = lines.find((l) => l.startsWith('{"partition":0,"model":"w","key":"ctl\\u0001\u{1F600}","value":'));
  assert.ok(odd !== undefined, all.stdout);
  assert.deepEqual(JSON.parse(odd).value, { a: [1, 2.5, 'x'] });
  const one = await runCli(['state', state, '--model', 'o', '--partition', '0']);
  assert.deepEqual(one.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).model), ['o', 'o', 'o']);
  const none = await runCli(['state', state, '--partition', '1']);
  assert.equal(none.stdout, '');
});

test('a foreign or damaged state dir fails at start with a message naming it, and changes nothing', async () => {
  const dir = tempDir('pystage-foreign-');
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  const input = '{"key":"a","i":1}\n';
  const one = await runCli(['run', '--model', counterModel, '--state-dir', foreign], input);
  assert.equal(one.code, 1, one.stderr);
  assert.ok(one.stderr.includes(`state dir ${foreign} is not a pystage state store`), one.stderr);
  const damaged = join(dir, 'damaged');
  mkdirSync(damaged);
  writeFileSync(join(damaged, 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
  const two = await runCli(['run', '--model', counterModel, '--state-dir', damaged], input);
  assert.equal(two.code, 1, two.stderr);
  assert.ok(two.stderr.includes(`state dir ${damaged} is damaged or not a pystage state store`), two.stderr);
  assert.equal(two.stdout, '', 'no message ran');
});

test('a pipe after a cut-short run: the state is restored, the input is new, and a warning names the offset', async () => {
  const job = makeJob(slowInput, ['--checkpoint-interval', '100']);
  await cutShort(job, 300);
  const before = stateCounts(await storedState(job.state));
  const at = job.args.indexOf('--input');
  const piped = startCli([...job.args.slice(0, at), ...job.args.slice(at + 2)], '{"key":"k0","i":0}\n');
  const result = await piped.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /the input is a pipe, so it is taken as new: the cut-short run's last checkpoint stands at input offset \d+/);
  assert.equal(stateCounts(await storedState(job.state)).get('k0'), (before.get('k0') ?? 0) + 1);
});

test('--repartition-state refuses a store where one state key lives in two partitions (state not keyed by the message key)', async () => {
  const state = join(tempDir('pystage-collide-'), 'state');
  // Partitioned by "p", but every message writes the state key "total": each partition holds its own "total".
  const input = Array.from({ length: 20 }, (_, i) => JSON.stringify({ p: `x${i}`, key: 'total', v: i })).join('\n') + '\n';
  const base = ['run', '--model', `w=${fixtures}state_writer.py`, '--key', 'p', '--state-dir', state];
  assert.equal((await runCli([...base, '--partitions', '2'], input)).code, 0);
  assert.deepEqual((await storedState(state)).map((l) => JSON.parse(l).partition).sort(), [0, 1], 'both partitions hold "total"');
  const moved = await runCli([...base, '--partitions', '3', '--repartition-state'], input);
  assert.equal(moved.code, 2, moved.stderr);
  assert.match(moved.stderr, /model "w" has key "total" in partitions 0 and 1, so it does not key its state by the message key/);
  assert.equal((await storedState(state)).length, 2, 'the store is unchanged');
});
