/**
 * Models that cannot load: one clear message naming the model and file (with the traceback when the model's
 * code raised), exit 2 (the user can fix it) for the CLI; a typed rejection carrying the traceback for the API.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStage, ModelLoadError } from '../../src/index.js';
import { runCli } from '../support/cli-runner.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

const broken = [
  ['missing file', 'no_such_file.py', /no_such_file\.py/],
  ['syntax error', 'syntax_error.py', /SyntaxError/],
  ['import error', 'import_error.py', /module_that_does_not_exist/],
  ['no class', 'no_class.py', /no_class\.py/],
  ['constructor raises', 'ctor_raises.py', /constructor refuses: missing weights/],
  ['path escaping --python-path', '../../../package.json', /python path|outside/i],
] as const;

describe('model load failures', () => {
  test('the CLI exits 2 with one message naming the model and the file, no log line per partition', async () => {
    // The CLI may name any file (its folder becomes a root): an escape is an API-only case; a missing folder replaces it.
    const cliCases = broken.map(([what, file, detail]) => (file.startsWith('..')
      ? ['folder that does not exist', 'no/such/dir/m.py', /no\/such\/dir\/m\.py.*does not exist/] as const
      : [what, `${fixtures}${file}`, detail] as const));
    for (const [what, file, detail] of cliCases) {
      const result = await runCli(['run', '--python-path', fixtures, '--model', `bad=${file}`, '--partitions', '2']);
      assert.equal(result.code, 2, `${what}: ${result.stderr}`);
      const lines = result.stderr.trimEnd().split('\n');
      assert.match(lines[0]!, /^pystage: the stage could not start: .*"bad"/, what);
      assert.match(result.stderr, detail, what);
      // Only the message and its traceback (indented): no "request refused" log line from each partition.
      assert.deepEqual(lines.slice(1).filter((l) => !l.startsWith('  ')), [], `${what}: ${result.stderr}`);
    }
  });

  test('a raising constructor, a raising init() and a syntax error: the CLI and ModelLoadError carry the traceback', async () => {
    const ctor = await runCli(['run', '--model', `bad=${fixtures}ctor_raises.py`, '--partitions', '1']);
    assert.equal(ctor.code, 2);
    assert.match(ctor.stderr, /^ {2}Traceback \(most recent call last\):$/m);
    assert.match(ctor.stderr, /File ".*ctor_raises\.py", line 3, in __init__/);
    const syntax = await runCli(['run', '--model', `bad=${fixtures}syntax_error.py`, '--partitions', '1']);
    assert.equal(syntax.code, 2);
    assert.match(syntax.stderr, /File ".*syntax_error\.py", line \d+/);
    assert.doesNotMatch(syntax.stderr, /importlib/, 'the import machinery\'s frames are not the model author\'s');
    // init() reading a data file that is not JSON: the data file is named, the model's line is in the traceback.
    await assert.rejects(createStage({ partitions: 1, logLevel: 'silent', models: [{ name: 'j', file: `${fixtures}json_init.py`, initData: `${fixtures}not_json.data` }] }), (err: unknown) => {
      assert.ok(err instanceof ModelLoadError, String(err));
      assert.match(err.message, /initModel "j" \(.*not_json\.data\) failed: JSONDecodeError/);
      assert.match(err.traceback ?? '', /File ".*json_init\.py", line \d+, in init/);
      return true;
    });
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
    const records = await collect(stage.process([{ key: 1, a: 1, b: 2 }, { key: 2, a: 3, b: 4 }]));
    assert.deepEqual(records.map((r) => (r.kind === 'output' ? r.output.r : r.error.code)).sort(), [3, 7]);
    await stage.close();
  });
});
