import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchSizer } from '../src/engine/batch.js';

const line = Buffer.from('{"key":"acct-1","a":1,"b":2}');

function fill(sizer: BatchSizer, messages: number): number {
  const batch = sizer.create(0);
  for (let i = 0; i < messages; i++) batch.add(i, line, 0, line.length, 7, 15, null);
  sizer.observe(batch.length, batch.count);
  return batch.length;
}

test('lone messages get small batches, drawn from Buffer\'s pool instead of memory of their own', () => {
  const sizer = new BatchSizer();
  for (let k = 0; k < 10; k++) fill(sizer, 1);
  const batch = sizer.create(0);
  assert.equal(batch.buf.length, 256);
  // Below Buffer.poolSize / 2, allocUnsafe slices the shared pool: many batches share one ArrayBuffer.
  assert.ok(batch.buf.buffer.byteLength >= Buffer.poolSize, `pooled: ArrayBuffer of ${batch.buf.buffer.byteLength} bytes`);
  assert.equal(batch.spans.length, 4 * 4);
});

test('a burst sizes the next batches for it, and the size decays back once batches are small again', () => {
  const sizer = new BatchSizer();
  const burst = fill(sizer, 1000);
  const after = sizer.create(0);
  assert.ok(after.buf.length >= burst && after.buf.length <= burst * 1.25 + 256, `${after.buf.length} for a burst of ${burst} bytes`);
  assert.ok(after.spans.length >= 4 * 1000);
  for (let k = 0; k < 60; k++) fill(sizer, 1);
  assert.equal(sizer.create(0).buf.length, 256);
});

test('a batch grows past its starting size and keeps every byte', () => {
  const sizer = new BatchSizer();
  const batch = sizer.create(0);
  for (let i = 0; i < 100; i++) batch.add(i, line, 0, line.length, 7, 15, null);
  assert.equal(batch.count, 100);
  assert.equal(batch.length, 100 * line.length + 99 * 2);
  assert.deepEqual(batch.text(99), line);
  assert.equal(batch.keyText(42)!.toString(), '"acct-1"');
  assert.equal(batch.offsets[99], 99);
});
