/**
 * Shard mode's command line and producers' shard function: what is refused before anything
 * connects (records that could not be in the commit script, flags that do not apply), and the
 * README's five lines of Python giving the same shard as shardOf.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { shardOf } from '../../src/index.js';
import { runCli } from '../support/cli-runner.js';
import { repoRoot } from '../support/paths.js';

const base = ['run', '--model', 'add=py/models/add.py', '--source', 'redis://127.0.0.1:6390/in', '--group', 'g'];
const here = (s: string) => `redis://127.0.0.1:6390/${s}`;

test('shard mode refuses what its commit could not hold, and flags that do not apply', async () => {
  const cases: [string[], RegExp][] = [
    [['--shards', '4'], /--shards needs --sink redis:\/\/…\/STREAM on the source's server/],
    [['--shards', '4', '--sink', here('out')], /--shards needs --errors redis:\/\/…\/STREAM/],
    [['--shards', '4', '--sink', here('out'), '--errors', 'errors.jsonl'], /--shards needs --errors redis/],
    [['--shards', '4', '--sink', 'redis://127.0.0.2:6390/out', '--errors', here('e')], /--sink redis:\/\/127\.0\.0\.2:6390\/out is on another server than --source/],
    [['--shards', '4', '--sink', here('out'), '--errors', here('e'), '--partitions', '2'], /--partitions does not apply with --shards/],
    [['--shards', '4', '--sink', here('out'), '--errors', here('e'), '--claim-idle', '100'], /--claim-idle does not apply with --shards/],
    [['--shards', '4', '--sink', here('out'), '--errors', here('e'), '--ordered'], /--ordered does not apply/],
    [['--shards', '300', '--sink', here('out'), '--errors', here('e')], /--shards must be at most 256/],
    [['--lease-ms', '1000'], /--lease-ms needs --shards N/],
  ];
  for (const [extra, message] of cases) {
    const r = await runCli([...base, ...extra]);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, extra.join(' '));
  }
  const state = await runCli(['state', here('in'), '--group', 'g']);
  assert.equal(state.code, 2);
  assert.match(state.stderr, /pystage state needs --group and --shards/);
});

test('the README\'s Python shard_of gives the shard shardOf gives', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('def shard_of(');
  assert.ok(start > 0, 'the README shows shard_of');
  const lines = readme.slice(start).split('\n');
  const indent = /^\s*/.exec(readme.slice(readme.lastIndexOf('\n', start) + 1, start))![0].length;
  const code = lines.slice(0, lines.findIndex((l) => l.trim() === '' || l.trim().startsWith('```'))).map((l, i) => (i === 0 ? l : l.slice(indent))).join('\n');
  assert.equal(code.split('\n').length, 5, 'five lines');
  const keys = [...Array.from({ length: 500 }, (_, i) => `acct-${i}`), '', 'é', '日本', '🙂x', 'a b\tc'];
  const script = `${code}\nimport json, sys\nkeys = json.load(sys.stdin)\nprint(json.dumps([[shard_of(k, n) for n in (1, 7, 8, 256)] for k in keys]))`;
  const python = JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(keys) }).toString()) as number[][];
  keys.forEach((key, i) => assert.deepEqual(python[i], [1, 7, 8, 256].map((n) => shardOf(key, n)), JSON.stringify(key)));
});
