/** Stream URLs: what they name, and the message for one that names nothing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError, parseStreamUrl } from '../../src/index.js';

test('a stream URL names host, port, database and stream', () => {
  assert.deepEqual(parseStreamUrl('redis://10.0.0.5:6380/3/orders'), {
    host: '10.0.0.5', port: 6380, db: 3, stream: 'orders', username: undefined, password: undefined, server: '10.0.0.5:6380/3',
  });
  const u = parseStreamUrl('redis://bob:s%40cret@[::1]/a%2Fb');
  assert.equal(u.host, '::1');
  assert.equal(u.port, 6379);
  assert.equal(u.db, 0);
  assert.equal(u.stream, 'a/b');
  assert.equal(u.username, 'bob');
  assert.equal(u.password, 's@cret');
  assert.equal(parseStreamUrl('redis://h:1/7').stream, '7', 'one path segment is the stream, even when it is a number');
});

test('a URL that does not name one stream is refused with what to write instead', () => {
  for (const [text, pattern] of [
    ['redis://h:1', /exactly one stream/],
    ['redis://h:1/0/a/b', /exactly one stream/],
    ['rediss://h:1/a', /must start with redis:\/\//],
    ['redis://h:1/a?x=1', /query/],
    ['orders', /not a URL/],
    ['redis://h:1/99999/a', /out of range/],
  ] as const) {
    assert.throws(() => parseStreamUrl(text), (err: unknown) => err instanceof InvalidOptionError && pattern.test((err as Error).message), text);
  }
});
