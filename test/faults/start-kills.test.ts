/**
 * A server killed from outside while the stage starts (before its ready line, or while its models
 * load) is started again like after any later crash; only failures no retry can fix end the start.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createStage, ModelLoadError, PythonStartError } from '../../src/index.js';
import { collect } from '../support/collect.js';
import { processesMatching } from '../support/processes.js';
import { fixtures } from '../support/paths.js';
import { tempDir } from '../support/temp-dirs.js';
import { waitFor } from '../support/wait-for.js';

/** A python path of its own holding slow_init.py: its servers are the only processes naming it. */
function ownPythonPath(): string {
  const dir = tempDir('start-kills-');
  copyFileSync(join(fixtures, 'slow_init.py'), join(dir, 'slow_init.py'));
  return dir;
}

/** SIGKILL the one server started with this python path. */
function killServerOf(pythonPath: string): number {
  const pids = processesMatching(`--python-path ${pythonPath}`);
  assert.equal(pids.length, 1, `one server for ${pythonPath}: ${pids}`);
  process.kill(pids[0]!, 'SIGKILL');
  return pids[0]!;
}

describe('kills during start', () => {
  test('killed while its model loads: the stage starts anyway, with one restart', async () => {
    const dir = ownPythonPath();
    const marker = join(dir, 'loading');
    const starting = createStage({
      partitions: 1, pythonPath: dir, logLevel: 'silent',
      models: [{ name: 'slow', file: 'slow_init.py', options: { marker, delay: 60 } }],
    });
    await waitFor('the model to start loading', () => existsSync(marker));
    killServerOf(dir);
    const stage = await starting;
    try {
      const [record] = await collect(stage.process([{ key: 'a', seq: 7 }]));
      assert.equal(record?.kind, 'output', JSON.stringify(record));
      assert.equal(stage.stats().restarts, 1);
      // That restart was the outside kill's, during the start.
      assert.deepEqual(stage.stats().restartCauses, { start: 1 });
    } finally {
      await stage.close();
    }
  });

  test('killed before its ready line: the stage starts anyway', async () => {
    const dir = ownPythonPath();
    // A sitecustomize on PYTHONPATH runs before the server's own code: the first server to start
    // sleeps there (after leaving a marker), long before it can print its ready line.
    const site = tempDir('start-kills-site-');
    const marker = join(site, 'started');
    writeFileSync(join(site, 'sitecustomize.py'),
      `import os, time\nif not os.path.exists(${JSON.stringify(marker)}):\n    open(${JSON.stringify(marker)}, "w").close()\n    time.sleep(60)\n`);
    const saved = process.env.PYTHONPATH;
    process.env.PYTHONPATH = site;
    try {
      const starting = createStage({
        partitions: 1, pythonPath: dir, logLevel: 'silent',
        models: [{ name: 'slow', file: 'slow_init.py' }],
      });
      await waitFor('the server to start', () => existsSync(marker));
      killServerOf(dir);
      const stage = await starting;
      try {
        const [record] = await collect(stage.process([{ key: 'a', seq: 1 }]));
        assert.equal(record?.kind, 'output', JSON.stringify(record));
      } finally {
        await stage.close();
      }
    } finally {
      if (saved === undefined) delete process.env.PYTHONPATH;
      else process.env.PYTHONPATH = saved;
    }
  });

  test('failures a retry cannot fix still end the start with their own error', async () => {
    await assert.rejects(
      createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', python: '/nonexistent/python3', models: [{ name: 'a', file: 'arith.py' }] }),
      PythonStartError,
    );
    await assert.rejects(
      createStage({ partitions: 1, pythonPath: fixtures, logLevel: 'silent', models: [{ name: 'bad', file: 'ctor_raises.py' }] }),
      (err: unknown) => err instanceof ModelLoadError && /constructor refuses/.test(err.message),
    );
  });
});
