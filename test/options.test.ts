/** Options are validated once, with errors that name the option and the value. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../src/api/errors.js';
import { resolveOptions } from '../src/api/options.js';
import { UsageError } from '../src/api/errors.js';
import { parseCommandLine } from '../src/cli/cli-args.js';
import { fixtures } from './support/paths.js';

test('defaults are filled in and model files resolve against the python path', () => {
  const o = resolveOptions({ models: [{ name: 'a', file: 'arith.py' }], pythonPath: fixtures });
  assert.equal(o.keyField, 'key');
  assert.equal(o.routeField, null);
  assert.equal(o.models[0]!.file, `${fixtures}arith.py`);
  assert.equal(o.partitions, availableParallelism(), 'one partition per core');
});

test('bad options are rejected with the option and value named', () => {
  const base = { models: [{ name: 'a', file: 'arith.py' }], pythonPath: fixtures };
  assert.throws(() => resolveOptions({ ...base, partitions: 0 }), (e: unknown) => e instanceof InvalidOptionError && /partitions.*got 0/.test(e.message));
  assert.throws(() => resolveOptions({ ...base, logLevel: 'loud' }), /logLevel "loud"/);
  assert.throws(() => resolveOptions({ ...base, models: [] }), /non-empty array/);
  assert.throws(() => resolveOptions({ ...base, models: [{ name: 'a', file: 'x.py' }, { name: 'a', file: 'y.py' }] }), /"a" is given twice/);
  assert.throws(() => resolveOptions({ ...base, pythonPath: '/no/such/dir' }), /\/no\/such\/dir/);
  assert.throws(() => resolveOptions({ ...base, loadTimeoutMs: 0 }), /loadTimeoutMs.*got 0/);
  assert.equal(resolveOptions(base).loadTimeoutMs, 300_000, 'loading gets 5 minutes by default');
  const command = parseCommandLine(['run', '--model', 'm=f.py', '--load-timeout', '90000']);
  assert.ok(command.kind === 'run' && command.options.loadTimeoutMs === 90000, '--load-timeout reaches loadTimeoutMs');
});

test('the command line: FILE:CLASS, options, init, and usage errors', () => {
  const c = parseCommandLine(['run', '--model', 'm=dir/f.py:Cls', '--model-options', 'm={"x":1}', '--init', 'm=data.bin', '--partitions', '3', '--ordered']);
  assert.equal(c.kind, 'run');
  if (c.kind !== 'run') return;
  // Paths typed on the command line are relative to the current directory.
  assert.deepEqual(c.options.models, [{ name: 'm', file: join(process.cwd(), 'dir/f.py'), className: 'Cls', options: { x: 1 }, initData: join(process.cwd(), 'data.bin') }]);
  assert.equal(c.options.partitions, 3);
  assert.equal(c.options.ordered, true);
  assert.throws(() => parseCommandLine(['run', '--model', 'm=f.py', '--partitions', 'two']), UsageError);
  assert.throws(() => parseCommandLine(['run', '--model', 'm=f.py', '--init', 'other=x']), /no --model other=FILE/);
  assert.throws(() => parseCommandLine(['serve']), /unknown command/);
  assert.deepEqual(parseCommandLine(['--version']), { kind: 'version' });
});

test('createStage refuses an unknown option or model key, naming the nearest valid one', () => {
  const model = { name: 'a', file: 'arith.py' };
  assert.throws(() => resolveOptions({ models: [model], pythonPath: fixtures, partiton: 2 } as never),
    (e: unknown) => e instanceof InvalidOptionError && e.message === 'createStage has no option "partiton"; did you mean "partitions"?');
  assert.throws(() => resolveOptions({ models: [{ ...model, clasName: 'Arith' }], pythonPath: fixtures } as never),
    (e: unknown) => e instanceof InvalidOptionError && e.message === 'model "a" has no option "clasName"; did you mean "className"?');
  assert.throws(() => resolveOptions({ models: [model], pythonPath: fixtures, zzzz: 1 } as never), (e: unknown) => e instanceof InvalidOptionError && /"zzzz"$/.test(e.message),
    'nothing near: no guess');
  assert.equal(resolveOptions({ models: [model], pythonPath: fixtures, metricsHost: '0.0.0.0' }).metricsHost, '0.0.0.0');
});

test('an unknown CLI option is answered with the nearest one, not parseArgs advice', () => {
  assert.throws(() => parseCommandLine(['run', '--modle', 'x']), (e: unknown) => e instanceof UsageError && e.message === 'unknown option --modle; did you mean --model?');
  assert.throws(() => parseCommandLine(['run', '--model', 'm=f.py', '--metrics-prot', '0']), /^UsageError: unknown option --metrics-prot; did you mean --metrics-port\?$/);
  assert.throws(() => parseCommandLine(['run', '--model', 'm=f.py', '--xyzzy']), (e: unknown) => e instanceof UsageError && e.message === 'unknown option --xyzzy');
});
