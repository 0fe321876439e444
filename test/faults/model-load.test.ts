/** Models that cannot load: a clear error naming the model and file; exit 1 for the CLI; typed rejection for the API. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createStage, ModelLoadError, type StageOutput } from '../../src/index.js';
import { runCli } from '../support/cli-runner.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

const broken = [
  ['missing file', 'no_such_file.py', /no_such_file\.py/],
  ['syntax error', 'syntax_error.py', /SyntaxError/],
  ['import error', 'import_error.py', /module_that_does_not_exist/],
  ['no class', 'no_class.py', /no_class\.py/],
  ['constructor raises', 'ctor_raises.py', /constructor refuses: missing weights/],
  ['path escaping --python-path', '../../../package.json', /python path|outside/i],
] as const;

describe('model load failures', () => {
  test('the CLI exits 1 with a message naming the model and the file', async () => {
    // The CLI may name any file (its folder becomes a root): an escape is an API-only case; a missing folder replaces it.
    const cliCases = broken.map(([what, file, detail]) => (file.startsWith('..')
      ? ['folder that does not exist', 'no/such/dir/m.py', /no\/such\/dir\/m\.py.*does not exist/] as const
      : [what, `${fixtures}${file}`, detail] as const));
    for (const [what, file, detail] of cliCases) {
      const result = await runCli(['run', '--python-path', fixtures, '--model', `bad=${file}`, '--partitions', '1']);
      assert.equal(result.code, 1, `${what}: ${result.stderr}`);
      assert.match(result.stderr, /"bad"/, what);
      assert.match(result.stderr, detail, what);
    }
  });

  test('the API rejects with ModelLoadError; at runtime, other models keep serving', async () => {
    const stage = await createStage({ partitions: 2, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'add', file: 'arith.py' }] });
    for (const [what, file, detail] of broken) {
      await assert.rejects(stage.addModel({ name: 'bad', file }), (err: unknown) => {
        assert.ok(err instanceof ModelLoadError, `${what}: ${err}`);
        assert.match(err.message, detail, what);
        return true;
      });
      await assert.rejects(stage.updateModel({ name: 'add', file }), ModelLoadError, `update to ${what}`);
    }
    const records = [];
    for await (const r of stage.process([{ key: 1, a: 1, b: 2 }, { key: 2, a: 3, b: 4 }])) records.push(r);
    assert.deepEqual(records.map((r) => (r as StageOutput).output.r).sort(), [3, 7]);
    await stage.close();
  });
});
