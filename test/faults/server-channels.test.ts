/**
 * What a model (and what it starts) can reach of its server: not the auth token (it is handed over on
 * stdin, so /proc/PID/environ never holds it), and not the log records (raw writes to fd 1 and 2 are
 * nested as text under one field, never merged into a record).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createStage } from '../../src/index.js';
import { runCli } from '../support/cli-runner.js';
import { collect } from '../support/collect.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

test('the token is in no environment: not the server\'s, not its model\'s subprocess\'s', async () => {
  const stage = await createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'spawn', file: 'spawner.py' }] });
  try {
    const [record] = await collect(stage.process([{ key: 'a' }]));
    assert.ok(record?.kind === 'output', JSON.stringify(record));
    const { server, child, tokenInEnviron } = record.output as { server: number; child: number; tokenInEnviron: boolean };
    assert.equal(tokenInEnviron, false);
    for (const pid of [server, child]) {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(!environ.some((entry) => entry.startsWith('PYSTAGE_TOKEN=')), `/proc/${pid}/environ holds the token`);
      assert.ok(environ.length > 1, 'the environment itself was read');
    }
  } finally {
    await stage.close();
  }
});

test('a JSON line a model writes to fd 1 is logged as text under `output`, never as a record of its own', async () => {
  const result = await runCli(['run', '--python-path', fixtures, '--model', `w=${fixtures}fd_writer.py`, '--partitions', '1', '--log-level', 'info'],
    '{"key":"a","seq":1}\n');
  assert.equal(result.code, 0, result.stderr);
  const records = result.stderr.split('\n').filter((l) => l.startsWith('{"level"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const forged = records.filter((r) => JSON.stringify(r).includes('forged by a'));
  assert.equal(forged.length, 2, `the model's line and its subprocess's line:\n${result.stderr}`);
  for (const r of forged) {
    assert.equal(r.level, 40, 'logged at warn, not the level the line claims');
    assert.equal(r.partition, 0, 'the real partition, not the one the line claims');
    assert.equal(typeof r.output, 'string');
    assert.match(r.output as string, /^\{"level":60,"partition":99,"msg":"forged by a (model|subprocess)"/);
    assert.doesNotMatch(String(r.msg), /forged/);
  }
  assert.ok(!records.some((r) => r.partition === 99 || r.level === 60), 'no record took the forged fields');
  const extras = records.filter((r) => r.msg === 'extra fields from a model');
  assert.equal(extras.length, 1);
  assert.equal(extras[0]!.partition, 0, 'a model\'s logging extras do not override the partition');
  assert.notEqual(extras[0]!.stage, 'fake');
});
