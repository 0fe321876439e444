/** The partitioner: a stable, documented hash (FNV-1a over UTF-8) and round-robin for keyless messages. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fnv1a, Partitioner } from '../src/engine/partitioner.js';

test('fnv1a matches the published FNV-1a 32-bit test vectors, for ASCII and non-ASCII text', () => {
  // Reference values from the FNV specification's test suite (draft-eastlake-fnv).
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
  // "é" is 0xC3 0xA9 in UTF-8: hash those two bytes by hand.
  let h = 0x811c9dc5;
  for (const byte of [0xc3, 0xa9]) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  assert.equal(fnv1a('é'), h);
});

test('same key, same partition; keyless messages take turns', () => {
  const p = new Partitioner(4);
  // FNV-1a of the key's text mod 4, hashed outside src: acct-1 0x8c421f5c, acct-2 0x8f422415, 42 0x87e38583.
  assert.deepEqual(['acct-1', 'acct-2', 42, 'acct-1', '42', 'acct-2'].map((k) => p.partitionOf(k)), [0, 1, 3, 0, 3, 1]);
  assert.deepEqual([null, undefined, null, null, null].map((k) => p.partitionOf(k)), [0, 1, 2, 3, 0]);
});
