/**
 * Where the harness's results go and what the READMEs quote: an ordinary run writes an untracked file,
 * only --save (never with smoke sizes) replaces bench/results/latest.json, and the README's table and
 * bench/README's "Latest results" are both the rendering of that one saved run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { test } from 'node:test';
import { loadBenchConfig, resultsDir } from '../bench/config.js';
import { formatReadmeTable, formatReport, type BenchResults } from '../bench/report.js';
import { UsageError } from '../src/api/errors.js';
import { repoRoot } from './support/paths.js';

const tracked = `${resultsDir}latest.json`;

test('a bench run writes an untracked bench/results/run-<time>.json unless --save or --out says otherwise', async () => {
  const plain = await loadBenchConfig(['--smoke']);
  assert.equal(dirname(plain.out) + '/', resultsDir);
  // .gitignore keeps bench/results/*.json out of git except latest.json and scoring.json.
  assert.match(basename(plain.out), /^run-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.json$/);
  assert.equal(plain.save, false);
  const saved = await loadBenchConfig(['--save', '--messages', '1000']);
  assert.deepEqual([saved.out, saved.save], [tracked, true]);
  const elsewhere = await loadBenchConfig(['--out', '/tmp/pystage-bench-x.json']);
  assert.equal(elsewhere.out, '/tmp/pystage-bench-x.json');
});

test('--save refuses smoke sizes and --out: the tracked file only ever holds a full, deliberate run', async () => {
  await assert.rejects(loadBenchConfig(['--save', '--smoke']), (err: Error) => err instanceof UsageError && /smoke/.test(err.message));
  await assert.rejects(loadBenchConfig(['--save', '--out', '/tmp/x.json']), (err: Error) => err instanceof UsageError && /--out/.test(err.message));
  await assert.rejects(loadBenchConfig(['--rounds', '0']), UsageError);
});

test('README and bench/README quote one run: both are rendered from bench/results/latest.json', () => {
  const results = JSON.parse(readFileSync(tracked, 'utf8')) as BenchResults;
  const readme = readFileSync(`${repoRoot}README.md`, 'utf8');
  assert.ok(readme.includes(formatReadmeTable(results)), 'README.md Performance table = node dist/bench/report.js --readme');
  const benchReadme = readFileSync(`${repoRoot}bench/README.md`, 'utf8');
  const section = benchReadme.slice(benchReadme.indexOf('## Latest results'));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
  assert.equal(block, formatReport(results) + '\n', 'bench/README.md "Latest results" = node dist/bench/report.js');
});
