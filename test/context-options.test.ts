/** Options of self.context (state limit, cache limits, host request timeout, handlers): defaults, checks, CLI flags. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveOptions } from '../src/api/options.js';
import { UsageError } from '../src/api/errors.js';
import { parseCommandLine } from '../src/cli/cli-args.js';
import { fixtures } from './support/paths.js';

const base = { models: [{ name: 'a', file: 'arith.py' }], pythonPath: fixtures };

test('defaults: 16 MiB of state, 100,000 entries and 64 MiB of cache, 30 s per host request, no handlers', () => {
  const o = resolveOptions(base);
  assert.deepEqual([o.maxStateBytes, o.cacheMaxEntries, o.cacheMaxBytes, o.hostRequestTimeoutMs, o.handlers], [16 * 1024 * 1024, 100_000, 64 * 1024 * 1024, 30_000, {}]);
});

test('bad values are refused with the option named; the state must fit half a frame', () => {
  assert.throws(() => resolveOptions({ ...base, maxStateBytes: 0 }), /maxStateBytes must be an integer from 1 to/);
  assert.throws(() => resolveOptions({ ...base, maxFrameBytes: 1024 * 1024, maxBatchBytes: 64 * 1024, inlineLimit: 64 * 1024, maxStateBytes: 600 * 1024 }), /maxStateBytes \(614400\) must be at most half of maxFrameBytes \(1048576\)/);
  assert.throws(() => resolveOptions({ ...base, cacheMaxEntries: -1 }), /cacheMaxEntries/);
  assert.throws(() => resolveOptions({ ...base, hostRequestTimeoutMs: 1.5 }), /hostRequestTimeoutMs/);
  assert.throws(() => resolveOptions({ ...base, handlers: { x: 3 as unknown as () => unknown } }), /handler "x" must be a function/);
  assert.throws(() => resolveOptions({ ...base, handlers: [] as unknown as Record<string, () => unknown> }), /handlers must be an object of functions/);
});

test('CLI flags set them; a bad value is bad usage', () => {
  const command = parseCommandLine(['run', '--model', 'a=x.py', '--handlers', 'h.mjs', '--max-state-bytes', '1000', '--cache-max-entries', '5', '--cache-max-bytes', '4096', '--host-request-timeout', '250']);
  assert.equal(command.kind, 'run');
  if (command.kind !== 'run') return;
  assert.equal(command.handlersFile, 'h.mjs');
  const o = command.options;
  assert.deepEqual([o.maxStateBytes, o.cacheMaxEntries, o.cacheMaxBytes, o.hostRequestTimeoutMs], [1000, 5, 4096, 250]);
  assert.throws(() => parseCommandLine(['run', '--model', 'a=x.py', '--max-state-bytes', 'lots']), (e: unknown) => e instanceof UsageError && /--max-state-bytes must be an integer/.test(e.message));
});
