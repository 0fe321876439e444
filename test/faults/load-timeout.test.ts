/** Loading a model has its own limit (loadTimeoutMs, --load-timeout), apart from the execute timeout. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStage, ModelLoadError } from '../../src/index.js';
import { runCli } from '../support/cli-runner.js';
import { collect } from '../support/collect.js';
import { fixtures } from '../support/paths.js';

describe('load timeout', () => {
  test('a constructor slower than the execute timeout loads, at start and through addModel', async () => {
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', executeTimeoutMs: 300,
      models: [{ name: 'slow', file: 'slow_init.py', options: { delay: 1 } }],
    });
    try {
      await stage.addModel({ name: 'slow2', file: 'slow_init.py', options: { delay: 1 } });
      const records = await collect(stage.process([{ key: 'a', seq: 1 }]));
      assert.deepEqual(records.map((r) => [r.kind, r.model]), [['output', 'slow'], ['output', 'slow2']]);
      assert.equal(stage.stats().restarts, 0);
    } finally {
      await stage.close();
    }
  });

  test('a load past the load timeout fails naming the model and saying it was loading; the stage goes on', async () => {
    await assert.rejects(
      createStage({
        partitions: 1, pythonPath: fixtures, logLevel: 'silent', loadTimeoutMs: 300,
        models: [{ name: 'weights', file: 'slow_init.py', options: { delay: 30 } }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof ModelLoadError, String(err));
        assert.equal(err.type, 'LoadTimeout');
        assert.match(err.message, /loading model "weights" did not finish within 300 ms/);
        return true;
      },
    );
    const stage = await createStage({
      partitions: 1, pythonPath: fixtures, logLevel: 'silent', loadTimeoutMs: 1500,
      models: [{ name: 'quick', file: 'slow_init.py' }],
    });
    try {
      await assert.rejects(stage.addModel({ name: 'weights', file: 'slow_init.py', options: { delay: 30 } }),
        (err: unknown) => err instanceof ModelLoadError && /loading model "weights" did not finish within 1500 ms/.test(err.message));
      const records = await collect(stage.process([{ key: 'a', seq: 2 }]));
      assert.deepEqual(records.map((r) => [r.kind, r.model]), [['output', 'quick']]);
    } finally {
      await stage.close();
    }
  });

  test('CLI: --load-timeout is validated, and its error names the model', async () => {
    const bad = await runCli(['run', '--python-path', fixtures, '--model', `s=${fixtures}slow_init.py`, '--load-timeout', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--load-timeout must be an integer/);
    const slow = await runCli(['run', '--python-path', fixtures, '--model', `s=${fixtures}slow_init.py`, '--model-options', 's={"delay":30}',
      '--partitions', '1', '--load-timeout', '300'], '{"key":1}\n');
    assert.equal(slow.code, 2, "a model that hangs loading is the user's to fix, like one that raises");
    assert.match(slow.stderr, /loading model "s" did not finish within 300 ms/);
  });
});
