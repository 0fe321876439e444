/**
 * A durable CLI job for the tests: an input file, a state dir and output files in a temporary folder,
 * the same command run again after each kill, and the comparison with an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, fixtures, repoRoot } from './paths.js';
import { runCli, summaryOf, type CliResult } from './cli-runner.js';
import { tempDir } from './temp-dirs.js';

/** Counts per key in self.context.state; its outputs differ between runs only in the server's pid. */
export const counterModel = `c=${fixtures}keyed_counter.py`;

/** Input lines: keyed counters, plus a line that is not JSON, a failing message and a keyless one now and then. */
export function counterInput(count: number, keys: number, sleep = 0): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 97 === 50) lines.push('not json at all');
    else if (i % 89 === 40) lines.push(JSON.stringify({ key: `k${i % keys}`, i, fail: true }));
    else if (i % 83 === 30) lines.push(JSON.stringify({ i }));
    else lines.push(JSON.stringify({ key: `k${i % keys}`, i, ...(sleep > 0 ? { sleep } : {}) }));
  }
  return lines.join('\n') + '\n';
}

export interface Job {
  dir: string;
  input: string;
  state: string;
  output: string;
  errors: string;
  args: string[];
}

/** A job in a fresh folder over `input`; `extra` flags are added to `pystage run`. */
export function makeJob(input: string, extra: string[] = []): Job {
  const dir = tempDir('pystage-durable-');
  const job = { dir, input: join(dir, 'in.jsonl'), state: join(dir, 'state'), output: join(dir, 'out.jsonl'), errors: join(dir, 'errors.jsonl'), args: [] as string[] };
  writeFileSync(job.input, input);
  job.args = ['run', '--model', counterModel, '--partitions', '2', '--state-dir', job.state, '--input', job.input,
    '--output', job.output, '--errors', job.errors, ...extra];
  return job;
}

export function runJob(job: Job, extra: string[] = []): Promise<CliResult> {
  return runCli([...job.args, ...extra]);
}

/** A run cut short by SIGTERM once `atLines` output lines are out: its exit checkpoint is a resume point. */
export async function cutShort(job: Job, atLines: number): Promise<void> {
  const { killed, result } = await killAt(job, atLines, 'SIGTERM');
  assert.ok(killed, `the run was stopped by SIGTERM (exit ${result.code}): ${result.stderr.slice(-500)}`);
}

/** Lines of a file ('' when it does not exist), without the server's pid the counter model adds to its outputs. */
export function fileLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.replace(/,"pid":\d+/, ''));
}

/**
 * Start the job, SIGKILL it once its output file holds `atLines` lines (node alone, or with `group` the
 * whole process group: node and every Python server at the same instant). Resolves with how it ended.
 */
export async function killAt(job: Job, atLines: number, group: boolean | 'SIGTERM'): Promise<{ killed: boolean; result: CliResult }> {
  const child = spawn(process.execPath, [cliPath, ...job.args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  let finished = false;
  void done.then(() => { finished = true; });
  while (!finished && fileLines(job.output).length < atLines) await new Promise((r) => setTimeout(r, 5));
  if (!finished) {
    if (group === 'SIGTERM') child.kill('SIGTERM');
    else if (group) process.kill(-child.pid!, 'SIGKILL');
    else child.kill('SIGKILL');
  }
  const result = await done;
  if (group === true) {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
  }
  return { killed: result.signal === 'SIGKILL' || (group === 'SIGTERM' && result.code === 143), result };
}

/** Lines grouped by the value `field` of each, in file order. */
function byField(lines: string[], ...fields: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of lines) {
    const record = JSON.parse(line);
    const value = JSON.stringify(fields.map((f) => record[f]));
    let list = out.get(value);
    if (list === undefined) out.set(value, (list = []));
    list.push(line);
  }
  return out;
}

/**
 * The files of `job` hold exactly what the uninterrupted `reference` wrote: per partition the same multiset of
 * lines, and per key the same lines in the same order (partitions may interleave differently).
 */
export function assertSameLines(job: Job, reference: Job): void {
  for (const file of ['output', 'errors'] as const) {
    const got = fileLines(job[file]);
    const want = fileLines(reference[file]);
    assert.equal(got.length, want.length, `${file}: ${got.length} lines, the uninterrupted run wrote ${want.length}`);
    const gotParts = byField(got, 'partition');
    for (const [partition, lines] of byField(want, 'partition')) {
      assert.deepEqual([...(gotParts.get(partition) ?? [])].sort(), [...lines].sort(), `${file}, partition ${partition}: another multiset of lines`);
    }
    // Order holds per key within its partition (keyless lines and rejected lines keep theirs per partition too).
    const gotKeys = byField(got, 'partition', 'key');
    for (const [key, lines] of byField(want, 'partition', 'key')) assert.deepEqual(gotKeys.get(key), lines, `${file}, (partition, key) ${key}: other lines or another order`);
  }
}

/** `pystage state DIR` as sorted lines. */
export async function storedState(dir: string): Promise<string[]> {
  const result = await runCli(['state', dir]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split('\n').filter((l) => l !== '').sort();
}

export { summaryOf };
