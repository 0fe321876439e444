/**
 * Errors cross the worker-thread boundary as plain records and are rebuilt in the main thread:
 * every class pystage throws must come back as itself, with its code, message and details.
 * The expected pairs are written out by hand here, not read from the registry under test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BadInputError, BadJsonError, BadRequestError, CacheValueTooLargeError, ConnectionBrokenError, ERROR_CODES, FrameError,
  FrameTooLargeError, HandlerFailure, InvalidOptionError, ModelExecutionError, ModelLoadError, PartitionFailedError,
  PartitionsError, PoisonMessageError, PystageError, PythonStartError, RedisStreamError, ResumeRefusedError, RoutingError, SpoolWriteError, StageClosedError, StateStoreError, UnusableReplyError, UsageError, LeaseLostError,
  errorFromRecord, toErrorRecord,
} from '../src/api/errors.js';
import * as pkg from '../src/index.js';

const thrown: PystageError[] = [
  new PystageError('generic'),
  new InvalidOptionError('bad option'),
  new PythonStartError('no python', { partition: 1 }),
  new ModelLoadError('cannot load', { model: 'm', type: 'SyntaxError', traceback: 'Traceback …' }),
  new ModelExecutionError('raised', { model: 'm', type: 'ValueError', traceback: null }),
  new BadRequestError('bad request'),
  new PoisonMessageError('killed its server twice', { partition: 0, model: 'm' }),
  new UnusableReplyError('its output file is gone', { partition: 0 }),
  new BadInputError('not JSON'),
  new RoutingError('no such model'),
  new PartitionFailedError('partition lost', { partition: 3 }),
  new StageClosedError('closed'),
  new PartitionsError('2 partitions failed', [new ModelLoadError('a'), new PythonStartError('b')]),
  new FrameError('bad-checksum'),
  new FrameTooLargeError(10, 5),
  new BadJsonError('not-json', 'payload is not JSON'),
  new ConnectionBrokenError('timeout', 'no frame for 30000 ms', 0),
  new CacheValueTooLargeError('too big'),
  new HandlerFailure('UnknownHandler', 'no handler named "x"'),
  new UsageError('--model is required'),
  new RedisStreamError('Redis refused XADD'),
  new StateStoreError('state dir /x is damaged'),
  new ResumeRefusedError('partitions: 2 then, 3 now'),
  new LeaseLostError('the lease of shard 3 was lost'),
  new SpoolWriteError('disk full', { partition: 0, model: 'm', type: 'ENOSPC' }),
];

const codes: [string, Function][] = [
  ['PYSTAGE_ERROR', PystageError], ['PYSTAGE_INVALID_OPTION', InvalidOptionError], ['PYSTAGE_PYTHON_START', PythonStartError],
  ['PYSTAGE_MODEL_LOAD', ModelLoadError], ['PYSTAGE_MODEL_EXECUTION', ModelExecutionError], ['PYSTAGE_BAD_REQUEST', BadRequestError],
  ['PYSTAGE_POISON_MESSAGE', PoisonMessageError], ['PYSTAGE_UNUSABLE_REPLY', UnusableReplyError], ['PYSTAGE_BAD_INPUT', BadInputError], ['PYSTAGE_ROUTING', RoutingError],
  ['PYSTAGE_PARTITION_FAILED', PartitionFailedError], ['PYSTAGE_STAGE_CLOSED', StageClosedError], ['PYSTAGE_PARTITIONS', PartitionsError],
  ['PYSTAGE_BAD_FRAME', FrameError], ['PYSTAGE_FRAME_TOO_LARGE', FrameTooLargeError], ['PYSTAGE_BAD_JSON', BadJsonError],
  ['PYSTAGE_CONNECTION_BROKEN', ConnectionBrokenError], ['PYSTAGE_CACHE_VALUE_TOO_LARGE', CacheValueTooLargeError],
  ['PYSTAGE_HOST_REQUEST', HandlerFailure], ['PYSTAGE_USAGE', UsageError], ['PYSTAGE_REDIS', RedisStreamError],
  ['PYSTAGE_STATE_STORE', StateStoreError], ['PYSTAGE_RESUME_REFUSED', ResumeRefusedError], ['PYSTAGE_LEASE_LOST', LeaseLostError], ['PYSTAGE_SPOOL_WRITE', SpoolWriteError],
];

test('every error class has its own stable code and extends PystageError', () => {
  assert.deepEqual(thrown.map((e) => e.code), codes.map(([code]) => code));
  for (const error of thrown) assert.ok(error instanceof PystageError && error instanceof Error, error.name);
  assert.deepEqual([...ERROR_CODES].sort(), codes.map(([code]) => code).sort(), 'errorFromRecord knows every code, no more');
});

test('a record rebuilds as the class of its code, with its message and details', () => {
  for (const error of thrown) {
    const record = structuredClone(toErrorRecord(error));
    const rebuilt = errorFromRecord(record);
    const [, Class] = codes.find(([code]) => code === error.code)!;
    assert.ok(rebuilt instanceof Class, `${error.code} came back as ${rebuilt.constructor.name}`);
    assert.equal(rebuilt.name, error.name);
    assert.equal(rebuilt.code, error.code);
    assert.equal(rebuilt.message, error.message);
    assert.deepEqual(rebuilt.toRecord(), error.toRecord());
  }
});

test('an unknown code comes back as a PystageError that keeps the code; a plain Error as PYSTAGE_ERROR', () => {
  const rebuilt = errorFromRecord({ code: 'SOMETHING_NEW', message: 'from a newer worker' });
  assert.ok(rebuilt instanceof PystageError);
  assert.equal(rebuilt.code, 'SOMETHING_NEW');
  assert.deepEqual(toErrorRecord(new TypeError('x')), { code: 'PYSTAGE_ERROR', message: 'x' });
});

test('the package exports the errors a user can catch or meet in a record, once each; internal ones stay inside', () => {
  const exported = Object.entries(pkg).filter(([, v]) => typeof v === 'function' && (v === PystageError || v.prototype instanceof PystageError)).map(([name]) => name).sort();
  assert.deepEqual(exported, [
    'BadInputError', 'BadRequestError', 'CacheValueTooLargeError', 'InvalidOptionError', 'LeaseLostError', 'ModelExecutionError',
    'ModelLoadError', 'PartitionFailedError', 'PartitionsError', 'PoisonMessageError', 'PystageError', 'PythonStartError',
    'RedisStreamError', 'ResumeRefusedError', 'RoutingError', 'SpoolWriteError', 'StageClosedError', 'StateStoreError', 'UnusableReplyError',
  ]);
  // A broken connection is retried inside a worker, a refused host request reaches the model, a usage error is the CLI's exit 2.
  for (const internal of ['ConnectionBrokenError', 'HandlerFailure', 'UsageError', 'FrameError', 'FrameTooLargeError', 'BadJsonError']) assert.ok(!(internal in pkg), internal);
  assert.equal(pkg.errorFromRecord, errorFromRecord);
  assert.equal(pkg.ERROR_CODES, ERROR_CODES);
});
