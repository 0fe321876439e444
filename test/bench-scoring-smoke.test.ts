/**
 * The scoring bench (bench/scoring.ts, numpy) in smoke mode, so it cannot rot: every row measured, every
 * output counted and the first score of each runner checked by the harness; never asserts a timing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ScoringResults } from '../bench/scoring.js';

const script = fileURLToPath(new URL('../bench/scoring.js', import.meta.url));
const python = process.env.PYSTAGE_NUMPY_PYTHON ?? 'python3';

test('node dist/bench/scoring.js --smoke: both styles and the loop measured, outputs counted', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pystage-scoring-smoke-'));
  try {
    const out = join(dir, 'scoring.json');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [script, '--smoke', '--out', out, '--python', python], { stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '';
      let e = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => { o += c; });
      child.stderr.setEncoding('utf8').on('data', (c: string) => { e += c; });
      child.once('error', reject);
      child.once('close', (c) => resolve({ code: c, stdout: o, stderr: e }));
    });
    assert.equal(code, 0, stderr.slice(-4000));
    const r = JSON.parse(readFileSync(out, 'utf8')) as ScoringResults;
    assert.deepEqual(r.rows.map((row) => row.runner), [
      'cli default partitions, execute', 'cli default partitions, execute_batch', 'cli p=1, execute_batch',
      'cli p=1, execute_batch, 1 math thread', 'A pyloop (per-message)',
    ]);
    for (const row of r.rows) {
      assert.equal(row.samples.length, r.rounds);
      for (const s of row.samples) assert.equal(s.outputs, s.messages, `${row.runner}: every message scored`);
      assert.ok(row.msgPerSec > 0);
    }
    assert.ok(r.ratios.perMessage > 0 && r.ratios.vectorised > 0);
    assert.match(stdout, /vectorised \(execute_batch\): [\d.]+× the loop/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
