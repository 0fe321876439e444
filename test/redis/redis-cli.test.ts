/**
 * `pystage run --source redis://…` end to end: a real redis-server, real stages (node + Python
 * servers) as child processes. Records carry the source entry's id; every entry ends acknowledged
 * with its records stored; bad entries become error records and never block the group.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { summaryOf } from '../support/cli-runner.js';
import { startRedis } from '../support/redis-server.js';
import { addMessages, startStage, stopLeftovers, countById, lastDelivered, pendingIds, readStream } from '../support/redis-stage.js';
import { waitFor } from '../support/wait-for.js';
import { modelsDir } from '../support/paths.js';
import { tempDir } from '../support/temp-dirs.js';

const big = 12345678901234567890123n;

test('outputs and errors go to streams with the entry id; big integers stay exact; own pending entries come first; bad entries become error records', async () => {
  const redis = await startRedis();
  try {
    const c = redis.client;
    // A consumer that died before acknowledging: 5 entries delivered to "c1", one of them deleted since.
    const early = await addMessages(c, 'in', [0, 1, 2, 3, 4].map((i) => JSON.stringify({ key: `k${i % 10}`, a: i, b: 0 }).replace('"b":0', `"b":${big}`)));
    await c.xgroup('CREATE', 'in', 'g', '0');
    await c.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 5, 'STREAMS', 'in', '>');
    await c.xdel('in', early[2]!);

    const { child, done } = startStage(['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '2',
      '--source', redis.url('in'), '--group', 'g', '--consumer', 'c1', '--sink', redis.url('out'), '--errors', redis.url('errors')]);
    const good = await addMessages(c, 'in', Array.from({ length: 295 }, (_, k) => {
      const i = k + 5;
      return JSON.stringify({ key: `k${i % 10}`, a: i, b: 0 }).replace('"b":0', `"b":${big}`);
    }));
    const bad = await addMessages(c, 'in', ['not json', '[1,2]', '{"key":"m","a":1}']);
    const badUtf8 = (await c.xadd('in', '*', 'data', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])))!;
    const fieldsOnly = (await c.xadd('in', '*', 'key', 'f', 'a', '1', 'b', '2'))!;
    const noFields = (await c.xadd('in', '*', 'foo', 'bar'))!;

    await waitFor('every entry acknowledged', async () => (await c.xlen('out')) === 300 && (await c.xlen('errors')) === 5
      && (await pendingIds(c, 'in', 'g')).length === 0);
    child.kill('SIGTERM');
    const result = await done;
    assert.equal(result.code, 0, result.stderr.slice(-2000));

    const outputs = await readStream(c, 'out');
    const counts = countById(outputs);
    for (const [k, id] of [...early, ...good].entries()) {
      if (k === 2) {
        assert.equal(counts.get(id), undefined, 'the deleted entry has no record');
        continue;
      }
      assert.equal(counts.get(id), 1, `entry ${id} (message ${k}) has ${counts.get(id)} outputs`);
    }
    for (const o of outputs.filter((o) => o.record.model === 'add' && o.record.key !== 'f')) {
      const k = [...early, ...good].indexOf(o.record.id);
      // Exact digits: compared as text, never through a JavaScript number.
      assert.ok(o.text.endsWith(`"output":{"sum":${big + BigInt(k)}}}`), o.text);
      assert.ok(o.text.startsWith(`{"id":"${o.record.id}","offset":`), o.text);
      assert.equal(o.record.key, `k${k % 10}`);
    }
    const f = outputs.find((o) => o.record.id === fieldsOnly)!;
    assert.deepEqual(f.record.output, { sum: '12' }, 'an entry without "data" is its fields, every value a string');

    const errors = await readStream(c, 'errors');
    const errorOf = new Map<string, Record<string, any>>(errors.map((e) => [e.record.id, e.record]));
    assert.equal(errorOf.get(bad[0]!)!.error.code, 'PYSTAGE_BAD_INPUT');
    assert.equal(errorOf.get(bad[0]!)!.input, 'not json');
    assert.equal(errorOf.get(bad[1]!)!.error.code, 'PYSTAGE_BAD_INPUT');
    assert.match(errorOf.get(bad[1]!)!.error.message, /not an object/);
    assert.equal(errorOf.get(bad[2]!)!.error.code, 'PYSTAGE_MODEL_EXECUTION');
    assert.match(errorOf.get(bad[2]!)!.error.message, /'b'/);
    assert.equal(errorOf.get(badUtf8)!.error.code, 'PYSTAGE_BAD_INPUT');
    assert.match(errorOf.get(badUtf8)!.error.message, /UTF-8/);
    assert.equal(errorOf.get(noFields)!.error.code, 'PYSTAGE_MODEL_EXECUTION');

    const summary = summaryOf(result.stderr);
    assert.equal(summary.recovered, 4, 'own pending entries read back');
    assert.equal(summary.deleted, 1);
    assert.equal(summary.acked, 306, 'every entry, the deleted one included');
    assert.equal(summary.unacked, 0);
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('pretty-printed entries (line feeds between tokens) run like one-line ones, in one batch with bad ones that fail alone', async () => {
  const redis = await startRedis();
  try {
    const c = redis.client;
    const ids = await addMessages(c, 'in', [
      `{\n  "key": "k1",\n  "a": 1,\n  "b": ${big}\n}`,
      '{"key":"k2","a":01,"b":2}',
      '{"key":"k3",\r\n"a":3,"b":4}',
      '{"key":"k4","a":"line\nbreak","b":5}',
    ]);
    await c.xgroup('CREATE', 'in', 'g', '0');
    const { child, done } = startStage(['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '1',
      '--source', redis.url('in'), '--group', 'g', '--sink', redis.url('out'), '--errors', redis.url('errors')]);
    await waitFor('every entry acknowledged', async () => (await pendingIds(c, 'in', 'g')).length === 0
      && (await c.xlen('out')) + (await c.xlen('errors')) === 4);
    child.kill('SIGTERM');
    assert.equal((await done).code, 0);
    const outputs = new Map((await readStream(c, 'out')).map((o) => [o.record.id, o.text]));
    assert.ok(outputs.get(ids[0]!)?.endsWith(`"output":{"sum":${big + 1n}}}`), outputs.get(ids[0]!));
    assert.ok(outputs.get(ids[2]!)?.endsWith('"output":{"sum":7}}'), outputs.get(ids[2]!));
    const errors = new Map((await readStream(c, 'errors')).map((e) => [e.record.id, e.record]));
    assert.deepEqual([...errors.keys()].sort(), [ids[1]!, ids[3]!].sort());
    for (const id of [ids[1]!, ids[3]!]) assert.equal(errors.get(id)!.error.code, 'PYSTAGE_BAD_INPUT', JSON.stringify(errors.get(id)));
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('without --sink outputs go to stdout; --errors FILE is appended to, never truncated; SIGINT drains and exits 130', async () => {
  const redis = await startRedis();
  const dir = tempDir('pystage-redis-test-');
  const errorsFile = join(dir, 'errors.jsonl');
  try {
    const c = redis.client;
    const ids = await addMessages(c, 'in', Array.from({ length: 200 }, (_, i) => i === 7 ? 'oops' : JSON.stringify({ key: `k${i}`, a: i, b: 1 })));
    const args = ['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '2', '--source', redis.url('in'), '--group', 'g', '--errors', errorsFile];
    const first = startStage(args);
    await waitFor('every entry acknowledged', async () => (await lastDelivered(c, 'in', 'g')) === ids[ids.length - 1] && (await pendingIds(c, 'in', 'g')).length === 0);
    first.child.kill('SIGINT');
    const r1 = await first.done;
    assert.equal(r1.code, 130, r1.stderr.slice(-2000));
    const lines = r1.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    assert.equal(lines.length, 199);
    assert.deepEqual(new Set(lines.map((l) => l.id)), new Set(ids.filter((_, i) => i !== 7)));

    const more = await addMessages(c, 'in', ['also bad']);
    const second = startStage([...args, '--progress', '--progress-interval', '100']);
    let stderr = '';
    second.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    await waitFor('the new entry acknowledged, and a progress line', async () => (await pendingIds(c, 'in', 'g')).length === 0
      && readFileSync(errorsFile, 'utf8').includes('also bad') && stderr.includes('{"progress"'));
    second.child.kill('SIGTERM');
    assert.equal((await second.done).code, 0);
    const errorLines = readFileSync(errorsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(errorLines.map((e) => e.id), [ids[7], more[0]], 'the first run\'s error record is still there');
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('bad usage: --group without --source, --source without --group, a malformed stream URL', async () => {
  const model = ['run', '--model', `add=${join(modelsDir, 'add.py')}`];
  for (const [args, pattern] of [
    [['--group', 'g'], /--group needs --source/],
    [['--source', 'redis://127.0.0.1:6379/in'], /--source needs --group/],
    [['--source', 'redis://127.0.0.1:6379', '--group', 'g'], /must name exactly one stream/],
    [['--source', 'http://x/in', '--group', 'g'], /must start with redis:\/\//],
    [['--source', 'redis://127.0.0.1:1/in', '--group', 'g', '--claim-idle', 'soon'], /--claim-idle must be an integer/],
    [['--source', 'redis://127.0.0.1:1/in', '--group', 'g', '--skip', '5'], /--skip has no meaning with --source/],
    [['--sink', 'redis://127.0.0.1:1/out'], /--sink needs --source/],
  ] as const) {
    const { done } = startStage([...model, ...args]);
    const r = await done;
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
});

test('a sink Redis refuses (not a stream): the stage exits 1 saying so, and acknowledges nothing', async () => {
  const redis = await startRedis();
  try {
    const c = redis.client;
    await c.set('out', 'a string, not a stream');
    const ids = await addMessages(c, 'in', Array.from({ length: 50 }, (_, i) => JSON.stringify({ key: `k${i}`, a: i, b: 1 })));
    const { done } = startStage(['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '1',
      '--source', redis.url('in'), '--group', 'g', '--consumer', 'c1', '--sink', redis.url('out')]);
    const r = await done;
    assert.equal(r.code, 1, r.stderr.slice(-2000));
    assert.match(r.stderr, /Redis refused .*WRONGTYPE/);
    assert.deepEqual(await pendingIds(c, 'in', 'g', 'c1'), ids, 'every entry read is still pending, for the next start or a claim');
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});

test('Redis unreachable at start: the stage keeps retrying, and SIGTERM still stops it with exit 0', async () => {
  const redis = await startRedis();
  const url = redis.url('in');
  await redis.stop();
  const { child, done } = startStage(['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '1', '--source', url, '--group', 'g']);
  try {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    await waitFor('a reconnect warning', () => /Redis connection error; reconnecting with backoff/.test(stderr));
    child.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.equal(summaryOf(r.stderr).in, 0);
  } finally {
    stopLeftovers();
  }
});

test('an entry delivered more than --max-deliveries times becomes a poison error record and is acknowledged; the rest run', async () => {
  const redis = await startRedis();
  try {
    const c = redis.client;
    const ids = await addMessages(c, 'in', [0, 1, 2].map((i) => JSON.stringify({ key: `k${i}`, a: i, b: 1 })));
    await c.xgroup('CREATE', 'in', 'g', '0');
    // As if three stages in a row died holding the first entry: each read of the pending list is a delivery.
    await c.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 1, 'STREAMS', 'in', '>');
    for (let k = 0; k < 3; k++) await c.xreadgroup('GROUP', 'g', 'c1', 'STREAMS', 'in', '0');
    const { child, done } = startStage(['run', '--model', `add=${join(modelsDir, 'add.py')}`, '--partitions', '1',
      '--source', redis.url('in'), '--group', 'g', '--consumer', 'c1', '--sink', redis.url('out'), '--errors', redis.url('errors'), '--max-deliveries', '4']);
    await waitFor('every entry acknowledged', async () => (await pendingIds(c, 'in', 'g')).length === 0 && (await c.xlen('out')) === 2);
    child.kill('SIGTERM');
    assert.equal((await done).code, 0);
    const [poison, ...more] = await readStream(c, 'errors');
    assert.equal(more.length, 0);
    assert.equal(poison!.record.id, ids[0]);
    assert.equal(poison!.record.error.code, 'PYSTAGE_POISON_MESSAGE');
    assert.match(poison!.record.error.message, /delivered 5 times/);
    assert.equal(poison!.record.input, JSON.stringify({ key: 'k0', a: 0, b: 1 }));
    assert.deepEqual((await readStream(c, 'out')).map((o) => o.record.id), ids.slice(1));
  } finally {
    stopLeftovers();
    await redis.stop();
  }
});
