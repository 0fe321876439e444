/**
 * The frames of self.context as the shared vector `context-exchange` holds them (test/vectors/):
 * the client reads the server's hostRequest and the State of a lean reply, and writes hostReply
 * payloads byte for byte as the vector states them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLeanBatchReply, readReplyHead } from '../src/protocol/replies.js';
import { hostReplyPayload, restoreStatePayloads, restoreStateRequest } from '../src/protocol/requests.js';
import { ReplyCode } from '../src/protocol/index.js';
import { StateTable } from '../src/context/state-table.js';
import { parseHostRequest } from '../workers/context/host-link.js';
import { PartitionState } from '../workers/context/partition-state.js';
import { recordingDecoder } from './support/frame-events.js';
import { vectorsDir } from './support/paths.js';

function payloads(): Buffer[] {
  const r = recordingDecoder(4096);
  r.decoder.push(readFileSync(join(vectorsDir, 'context-exchange.bin')));
  return r.payloads;
}

test('a hostRequest frame: Code 3 with the running request\'s Id; its payload text kept as written', () => {
  const [request, , cacheSet] = payloads();
  assert.deepEqual(readReplyHead(request!), { cmd: 'hostRequest', id: 7, code: ReplyCode.HOST_REQUEST });
  assert.deepEqual(parseHostRequest(request!), { seq: 1, kind: 'call', name: 'lookup', index: 2, ttlMs: null, payload: '{"id":12345678901234567890}' });
  assert.deepEqual(parseHostRequest(cacheSet!), { seq: 2, kind: 'cache.set', name: 'rate', index: 2, ttlMs: 60000, payload: '{"eur":1.08}' });
});

test('hostReply payloads are written exactly as the vector has them', () => {
  const [, reply, , error] = payloads();
  assert.equal(hostReplyPayload(1, { ok: true, json: '{"name":"Ada"}' }), reply!.toString('utf8'));
  assert.equal(hostReplyPayload(2, { ok: false, type: 'HandlerError', message: 'it broke' }), error!.toString('utf8'));
});

test('a lean reply\'s State: applied in order, values kept as the server wrote them; restoreState carries them back', () => {
  const reply = payloads()[4]!;
  const lean = readLeanBatchReply(reply, 3);
  assert.equal(reply.toString('utf8', lean.stateStart, lean.stateEnd), '[["count",3],["gone"]]');
  const state = new PartitionState();
  state.table.set('m', 'gone', '"before"');
  state.table.set('m', 'big', '12345678901234567890');
  const changes = state.readReply('m', reply, lean.stateStart, lean.stateEnd);
  assert.deepEqual(changes, ['m', 'count', '3', null, 'm', 'gone', null, null]);
  assert.equal(state.table.keys, 2, 'read, not applied yet');
  state.apply(changes);
  assert.equal(state.table.toJson(), '{"m":[["big",12345678901234567890],["count",3]]}');
  assert.equal(restoreStateRequest(4, state.table.toJson()), '{"Cmd":"restoreState","CmdVer":1,"Id":4,"CmdOptions":{"States":{"m":[["big",12345678901234567890],["count",3]]}}}');
  // A reply without State reads as before.
  const plain = Buffer.from('{"Cmd":"executeBatch","Id":8,"Code":0,"Errors":[],"Files":[],"Result":[null]}');
  assert.equal(readLeanBatchReply(plain, 1).stateStart, -1);
  const mirror = new StateTable();
  mirror.load(state.table.snapshot());
  assert.deepEqual(mirror.read(), { m: { big: 12345678901234567000, count: 3 } });
  assert.equal(mirror.keys, 2);
  assert.equal(mirror.bytes, state.table.bytes);
});

test('State entries with an expiry are read as groups of four; a state is restored in frames, the first replacing, the rest appending', () => {
  const state = new PartitionState();
  const reply = Buffer.from('[["a",{"x":[1,2]},1796698619331],["b\\u0001",7],["c"]]');
  const changes = state.readReply('m', reply, 0, reply.length);
  assert.deepEqual(changes, ['m', 'a', '{"x":[1,2]}', 1796698619331, 'm', 'b\u0001', '7', null, 'm', 'c', null, null]);
  state.apply(changes);
  assert.throws(() => state.readReply('m', Buffer.from('[["a",1,"soon"]]'), 0, 16), /expiresAt/);
  // "b\u0001" counts its escape as it crosses the wire (6 bytes), "a" its expiry.
  assert.equal(state.table.bytes, (1 + 11 + 8 + 16) + (1 + 6 + 1 + 8));
  const table = new StateTable();
  for (let i = 0; i < 10; i++) table.set(i < 5 ? 'm' : 'n', `k${i}`, String(i), i === 0 ? 99 : null);
  const restores = [...restoreStatePayloads(table.entries(), 40)];
  // Each frame carries the entries its request holds, in order (loadState applies them frame by frame).
  assert.deepEqual(restores.flatMap((r) => r.entries), [...table.entries()]);
  const frames = restores.map((r, id) => JSON.parse(r.request(id)) as { CmdOptions: { States: Record<string, unknown[]>; Append?: boolean } });
  assert.ok(frames.length > 1);
  assert.deepEqual(frames.map((f) => f.CmdOptions.Append ?? false), [false, ...frames.slice(1).map(() => true)]);
  const entries = frames.flatMap((f) => Object.entries(f.CmdOptions.States).flatMap(([model, list]) => list.map((e) => [model, ...(e as unknown[])])));
  assert.deepEqual(entries, Array.from({ length: 10 }, (_, i) => [i < 5 ? 'm' : 'n', `k${i}`, i, ...(i === 0 ? [99] : [])]));
  // Nothing to restore is still one replacing frame: the server forgets what it held.
  assert.deepEqual([...restoreStatePayloads(new StateTable().entries(), 40)].map((p) => p.request(1)), [restoreStateRequest(1, '{}')]);
});
