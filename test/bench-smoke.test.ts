/**
 * The benchmark harness in smoke mode (a few thousand messages, one round), so it cannot rot.
 * Checks that every measurement is present and sane and that every runner's outputs were
 * counted right; never asserts a timing (this machine's speed is not the harness's business).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchResults } from '../bench/report.js';
import { repoRoot } from './support/paths.js';

const runScript = fileURLToPath(new URL('../bench/run.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runScript, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function positive(value: unknown, what: string): void {
  assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${what} should be a positive number, got ${String(value)}`);
}

// About 40 s on a quiet 2-core machine (seven runners, latency at two rates, CPU per message, recovery, the memory
// pair), several times that when the cores are shared.
test('npm run bench -- --smoke: every measurement present, non-zero, outputs counted right', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pystage-bench-smoke-'));
  try {
    const out = join(dir, 'results.json');
    const result = await run(['--smoke', '--out', out]);
    assert.equal(result.code, 0, `bench --smoke failed:\n${result.stderr.slice(-4000)}`);
    const r = JSON.parse(readFileSync(out, 'utf8')) as BenchResults;

    const runners = r.throughput.map((t) => t.runner);
    for (const name of Object.values(r.names)) assert.ok(runners.includes(name), `no throughput row ${name} in ${runners.join(', ')}`);
    assert.ok(runners.some((n) => n.startsWith('cli p=1')) && runners.some((n) => n.startsWith('api p=1')), 'partition count 1 is measured');
    for (const t of r.throughput) {
      assert.equal(t.samples.length, r.config.rounds, `${t.runner}: one sample per round`);
      for (const s of t.samples) {
        assert.equal(s.outputs, s.messages, `${t.runner}: outputs counted ${s.outputs} for ${s.messages} messages`);
        positive(s.messages, `${t.runner} messages`);
        positive(s.seconds, `${t.runner} seconds`);
        positive(s.msgPerSec, `${t.runner} msg/s`);
        positive(s.cpuSeconds, `${t.runner} cpu seconds`);
        positive(s.pythonMb, `${t.runner} python MB`);
        if (t.runner !== r.names.pyloop) positive(s.nodeMb, `${t.runner} node MB`);
      }
    }

    for (const [label, l] of Object.entries(r.latency)) {
      assert.equal(l.outputs, l.messages, `latency ${label}: every message answered`);
      assert.equal(l.errors, 0, `latency ${label}: no errors`);
      positive(l.offeredRate, `latency ${label} offered rate`);
      for (const key of ['count', 'p50', 'p99', 'max'] as const) positive(l.latency[key], `latency ${label} ${key}`);
    }
    assert.equal(r.startup.samples.length, r.config.startupSamples);
    for (const ms of r.startup.samples) positive(ms, 'startup ms');
    assert.equal(r.restart.samples.length, r.config.restart.kills);
    for (const ms of r.restart.samples) positive(ms, 'restart ms');
    assert.ok(r.restart.restarts >= r.config.restart.kills, `stage counted ${r.restart.restarts} restarts for ${r.config.restart.kills} kills`);
    assert.equal(r.restart.outputs, r.restart.messages, 'restart run: every message answered despite the kills');
    assert.equal(r.memory.large.outputs, r.memory.large.messages);
    positive(r.memory.smallTotalMb, 'memory 1× MB');
    positive(r.memory.largeTotalMb, 'memory 4× MB');

    // CPU ticks are hundredths of a second: at smoke sizes a thread may well have used none.
    assert.deepEqual(r.cpu?.map((c) => [c.partitions, c.messages]), [[r.config.defaultPartitions, r.config.messages], [1, r.config.messages]]);
    for (const c of r.cpu!) {
      for (const key of ['mainUs', 'workersUs', 'otherUs', 'pythonUs'] as const) assert.ok(Number.isFinite(c[key]) && c[key] >= 0, `cpu ${key}: ${c[key]}`);
      assert.ok(Math.abs(c.nodeUs - (c.mainUs + c.workersUs + c.otherUs)) < 1e-6, 'node = main + workers + other');
    }
    assert.ok(r.latency.fixedLow !== undefined, 'latency at 1,000 msg/s is measured');

    assert.ok(r.cliCpu !== undefined && Number.isFinite(r.cliCpu.nodeUs) && Number.isFinite(r.cliCpu.mainUs), 'CLI CPU per message is measured');

    assert.equal(r.targets.length, 13, 'every target of the issues is stated');
    for (const t of r.targets) {
      assert.equal(typeof t.met, 'boolean');
      assert.ok(result.stdout.includes(t.name), `the table states target "${t.name}"`);
    }
    assert.match(result.stderr, /round 1\/1/, 'progress lines on stderr');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the harness refuses a run whose output count differs from its input count', async () => {
  const { checkOutputs, OutputCountError } = await import('../bench/measurement.js');
  assert.throws(() => checkOutputs('some runner', 1000, 999), OutputCountError);
  assert.throws(() => checkOutputs('some runner', 1000, 1001), OutputCountError);
  assert.doesNotThrow(() => checkOutputs('some runner', 1000, 1000));
});
