/** Frame encoder, decoder behaviour beyond the vectors, the JSON payload layer and message helpers. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  BadJsonError,
  FrameDecoder,
  FrameTooLargeError,
  ReplyCode,
  encodeFrame,
  encodeFrames,
  encodeJsonFrame,
  isReply,
  makeRequest,
  parseJsonPayload,
} from '../src/protocol/index.js';
import { InvalidOptionError } from '../src/api/errors.js';
import { byteChunks, recordingDecoder, splitAt } from './support/frame-events.js';
import { pythonProtocol } from './support/paths.js';

const md5 = (data: Buffer): Buffer => createHash('md5').update(data).digest();

describe('encodeFrame', () => {
  test('lays out header, payload and trailer byte by byte', () => {
    const payload = '{"Id":1}';
    const expected = Buffer.from([
      0x4b, 0x50, 0x59, 0x53, // "KPYS"
      0x01, // version
      ...md5(Buffer.from(payload, 'latin1')),
      0x00, 0x00, 0x00, 0x08, // length 8, big-endian
      0x7b, 0x22, 0x49, 0x64, 0x22, 0x3a, 0x31, 0x7d, // {"Id":1}
      0x4b, 0x50, 0x59, 0x45, // "KPYE"
    ]);
    assert.deepEqual(encodeFrame(payload), expected);
    assert.deepEqual(encodeFrame(Buffer.from(payload)), expected);
  });

  test('writes LENGTH big-endian for a payload over 16 bits', () => {
    const payload = Buffer.alloc(0x012345, 0x61);
    const frame = encodeFrame(payload);
    assert.deepEqual([...frame.subarray(21, 25)], [0x00, 0x01, 0x23, 0x45]);
    assert.equal(frame.length, 25 + 0x012345 + 4);
    assert.deepEqual(frame.subarray(5, 21), md5(payload));
  });

  test('counts a string payload in UTF-8 bytes, not characters', () => {
    const text = '{"t":"é日🎉"}';
    const bytes = Buffer.from(text, 'utf8');
    assert.equal(bytes.length, 17);
    const frame = encodeFrame(text);
    assert.equal(frame.readUInt32BE(21), 17);
    assert.deepEqual(frame.subarray(25, 42), bytes);
    assert.deepEqual(frame.subarray(5, 21), md5(bytes));
  });

  test('returns a buffer that owns exactly its ArrayBuffer (transferable)', () => {
    const frame = encodeFrame('{"a":1}');
    assert.equal(frame.byteOffset, 0);
    assert.equal(frame.buffer.byteLength, frame.length);
  });

  test('encodes an empty payload', () => {
    const frame = encodeFrame('');
    assert.equal(frame.length, 29);
    assert.deepEqual(frame.subarray(5, 21), Buffer.from('d41d8cd98f00b204e9800998ecf8427e', 'hex'));
  });

  test('rejects a payload over maxFrameBytes with FrameTooLargeError', () => {
    assert.equal(encodeFrame('x'.repeat(10), 10).length, 39);
    assert.throws(
      () => encodeFrame('x'.repeat(11), 10),
      (err: unknown) => err instanceof FrameTooLargeError && err.code === 'PYSTAGE_FRAME_TOO_LARGE' && err.payloadBytes === 11,
    );
    assert.throws(() => encodeFrame('é'.repeat(6), 11), FrameTooLargeError, 'limit applies to bytes: 12 > 11');
  });

  test('encodeFrames writes the frames back to back into one own buffer', () => {
    const payloads = ['{"Id":1}', Buffer.from('{"Id":2,"x":"é"}'), ''];
    const frames = encodeFrames(payloads);
    assert.deepEqual(frames, Buffer.concat(payloads.map((p) => encodeFrame(p))));
    assert.equal(frames.buffer.byteLength, frames.length);
    assert.equal(encodeFrames([]).length, 0);
    assert.throws(() => encodeFrames(['{}', 'x'.repeat(11)], 10), FrameTooLargeError);
  });

  test('encodeJsonFrame frames the compact JSON text in UTF-8, keys in insertion order, within maxFrameBytes', () => {
    // The expected text is written out, not computed: no spaces, keys as inserted, non-ASCII as UTF-8.
    const text = '{"Cmd":"hello","Id":3,"CmdOptions":{"Token":"é","Big":-12.5}}';
    const frame = encodeJsonFrame({ Cmd: 'hello', Id: 3, CmdOptions: { Token: 'é', Big: -12.5 } });
    const payload = Buffer.from(text, 'utf8');
    assert.equal(payload.length, text.length + 1, 'é is two bytes');
    assert.deepEqual(frame.subarray(0, 5), Buffer.from('KPYS\x01', 'latin1'));
    assert.deepEqual(frame.subarray(5, 21), md5(payload));
    assert.equal(frame.readUInt32BE(21), payload.length);
    assert.deepEqual(frame.subarray(25, 25 + payload.length), payload);
    assert.deepEqual(frame.subarray(25 + payload.length), Buffer.from('KPYE', 'latin1'));
    assert.equal(encodeJsonFrame({ a: 'x' }, 9).length, 29 + 9, '{"a":"x"} is exactly 9 bytes');
    assert.throws(() => encodeJsonFrame({ a: 'é' }, 9), FrameTooLargeError, '{"a":"é"} is 10 bytes');
  });
});

describe('FrameDecoder', () => {
  test('round-trips frames of many sizes, whole and in 1-byte chunks', () => {
    const payloads = [0, 1, 55, 56, 63, 64, 100, 1023, 1024, 5000, 70000].map((n) =>
      Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff)),
    );
    const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    for (const chunks of [[stream], byteChunks(stream)]) {
      const r = recordingDecoder(1 << 20, 'hex');
      for (const c of chunks) r.decoder.push(c);
      assert.deepEqual(r.payloads, payloads);
      assert.equal(r.events.length, payloads.length);
      assert.equal(r.skipped, 0);
      assert.equal(r.decoder.bufferedBytes, 0);
    }
  });

  test('decodes many frames from one chunk as views into it, without copying', () => {
    const payloads = Array.from({ length: 1000 }, (_, i) => `{"Id":${i},"v":"${'x'.repeat(i % 50)}"}`);
    const chunk = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    const r = recordingDecoder(4096);
    r.decoder.push(chunk);
    assert.deepEqual(r.events, payloads.map((payload) => ({ event: 'frame', payload })));
    for (const p of r.payloads) assert.equal(p.buffer, chunk.buffer);
  });

  test('copies a frame split across chunks once, into a buffer of its payload size', () => {
    const payload = Buffer.alloc(100_000, 0x62);
    const frame = encodeFrame(payload);
    const r = recordingDecoder(1 << 20);
    for (const c of splitAt(frame, [10, 40_000, 80_000])) r.decoder.push(c);
    assert.equal(r.payloads.length, 1);
    const [decoded] = r.payloads;
    assert.deepEqual(decoded, payload);
    assert.equal(decoded!.buffer.byteLength, payload.length);
    assert.notEqual(decoded!.buffer, frame.buffer);
  });

  test('reports too-long for a frame over its limit and decodes the next one', () => {
    const big = encodeFrame('x'.repeat(101));
    const next = encodeFrame('{"Id":2}');
    const r = recordingDecoder(100);
    r.decoder.push(Buffer.concat([big, next]));
    assert.deepEqual(r.events, [
      { event: 'error', kind: 'too-long' },
      { event: 'frame', payload: '{"Id":2}' },
    ]);
    // Everything after the rejected BEGIN is scanned past: 21 header bytes, 101 payload, 4 END.
    assert.equal(r.skipped, 21 + 101 + 4);
  });

  test('accepts a frame of exactly maxFrameBytes', () => {
    const r = recordingDecoder(100);
    r.decoder.push(encodeFrame('y'.repeat(100)));
    assert.deepEqual(r.events, [{ event: 'frame', payload: 'y'.repeat(100) }]);
  });

  test('CRC32 frames (VERSION 2): the CRC32 big-endian then 12 zeros; decoded like MD5 frames, damage found', () => {
    // 0xCBF43926 is CRC-32's published check value, the CRC of the ASCII text "123456789".
    const frame = encodeFrame('123456789', undefined, 'crc32');
    assert.equal(frame[4], 2);
    assert.equal(frame.subarray(5, 21).toString('hex'), 'cbf43926' + '00'.repeat(12));
    const r = recordingDecoder(100);
    r.decoder.push(Buffer.concat([frame, encodeFrame('{"a":1}'), encodeFrame('{"b":2}', undefined, 'crc32')]));
    assert.deepEqual(r.events, [
      { event: 'frame', payload: '123456789' }, { event: 'frame', payload: '{"a":1}' }, { event: 'frame', payload: '{"b":2}' },
    ]);
    const padded = Buffer.from(frame);
    padded[20] = 1;
    const flipped = Buffer.from(frame);
    flipped[8]! ^= 0x80;
    const bad = recordingDecoder(100);
    bad.decoder.push(Buffer.concat([padded, flipped]));
    assert.deepEqual(bad.events.map((e) => ('kind' in e ? e.kind : e.event)), ['bad-checksum', 'bad-checksum']);
  });

  test('decides bad-version from the first 5 bytes, without waiting for the header', () => {
    const r = recordingDecoder(100);
    r.decoder.push(Buffer.from('KPYS\x03', 'latin1'));
    assert.deepEqual(r.events, [{ event: 'error', kind: 'bad-version' }]);
  });

  test('bufferedBytes counts a partial BEGIN, header, body and trailer', () => {
    const frame = encodeFrame('{"Id":77}');
    const r = recordingDecoder(100);
    const seen: number[] = [];
    for (const c of byteChunks(frame)) {
      r.decoder.push(c);
      seen.push(r.decoder.bufferedBytes);
    }
    assert.deepEqual(seen, [...Array.from({ length: frame.length - 1 }, (_, i) => i + 1), 0]);
    assert.equal(r.events.length, 1);
  });

  test('a chunk pushed from inside a callback is decoded after the current one', () => {
    const order: string[] = [];
    const a = encodeFrame('"a"');
    const b = encodeFrame('"b"');
    const c = encodeFrame('"c"');
    const decoder: FrameDecoder = new FrameDecoder({
      onFrame(payload) {
        order.push(payload.toString());
        if (payload.toString() === '"a"') decoder.push(c);
      },
      onError() {
        assert.fail('no error expected');
      },
    });
    decoder.push(Buffer.concat([a, b]));
    assert.deepEqual(order, ['"a"', '"b"', '"c"']);
  });

  test('a throwing callback propagates, and the decoder still works afterwards', () => {
    let calls = 0;
    const decoder = new FrameDecoder({
      onFrame() {
        calls++;
        if (calls === 1) throw new Error('boom');
      },
      onError() {},
    });
    const frame = encodeFrame('{}');
    assert.throws(() => decoder.push(Buffer.concat([frame, frame.subarray(0, 10)])), /boom/);
    assert.equal(decoder.bufferedBytes, 0);
    decoder.push(frame);
    assert.equal(calls, 2);
  });

  test('reset drops a partial frame', () => {
    const r = recordingDecoder(100);
    const frame = encodeFrame('{"Id":1}');
    r.decoder.push(frame.subarray(0, 30));
    r.decoder.reset();
    assert.equal(r.decoder.bufferedBytes, 0);
    r.decoder.push(frame);
    assert.deepEqual(r.events, [{ event: 'frame', payload: '{"Id":1}' }]);
  });

  test('rejects a maxFrameBytes that the LENGTH field cannot express', () => {
    const handlers = { onFrame() {}, onError() {} };
    assert.throws(() => new FrameDecoder({ ...handlers, maxFrameBytes: -1 }), InvalidOptionError);
    assert.throws(() => new FrameDecoder({ ...handlers, maxFrameBytes: 2 ** 32 }), InvalidOptionError);
    assert.throws(() => new FrameDecoder({ ...handlers, maxFrameBytes: 1.5 }), InvalidOptionError);
  });
});

describe('parseJsonPayload', () => {
  test('returns the object', () => {
    assert.deepEqual(parseJsonPayload(Buffer.from('{"Cmd":"hello","Id":1,"t":"é"}')), { Cmd: 'hello', Id: 1, t: 'é' });
  });

  const reasonOf = (bytes: Buffer): string => {
    try {
      parseJsonPayload(bytes);
    } catch (err) {
      assert.ok(err instanceof BadJsonError);
      assert.equal(err.code, 'PYSTAGE_BAD_JSON');
      assert.equal(err.kind, 'bad-json');
      return err.reason;
    }
    return 'accepted';
  };

  test('rejects non-objects, non-JSON and invalid UTF-8 with a reason', () => {
    assert.equal(reasonOf(Buffer.from('[1,2,3]')), 'not-object');
    assert.equal(reasonOf(Buffer.from('null')), 'not-object');
    assert.equal(reasonOf(Buffer.from('42')), 'not-object');
    assert.equal(reasonOf(Buffer.from('"{}"')), 'not-object');
    assert.equal(reasonOf(Buffer.from('this is not json')), 'not-json');
    assert.equal(reasonOf(Buffer.from('')), 'not-json');
    assert.equal(reasonOf(Buffer.from('{"a":NaN}')), 'not-json');
    assert.equal(reasonOf(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), 'not-utf8');
    assert.equal(reasonOf(Buffer.from([0x7b, 0x7d, 0xc3])), 'not-utf8');
  });
});

describe('messages', () => {
  test('makeRequest builds the wire shape', () => {
    assert.deepEqual(makeRequest('executeModel', 5, { ModelName: 'add', InputDictionary: { a: 1 } }), {
      Cmd: 'executeModel',
      CmdVer: 1,
      Id: 5,
      CmdOptions: { ModelName: 'add', InputDictionary: { a: 1 } },
    });
    assert.deepEqual(makeRequest('addModel', 6, { ModelName: 'm', ModelFile: 'm.py' }, { k: 2 }).ModelOptions, { k: 2 });
  });

  test('reply codes have their protocol values', () => {
    // The Python server is the other end of the wire: its constants are the reference.
    const python = readFileSync(pythonProtocol, 'utf8');
    const codes: Record<string, number> = {};
    for (const [, name, value] of python.matchAll(/^([A-Z_]+) = (-?\d+)$/gm)) {
      if (name !== 'PROTOCOL_VERSION' && name !== 'COMMAND_VERSION') codes[name!] = Number(value);
    }
    assert.deepEqual({ ...ReplyCode }, codes);
  });

  test('isReply accepts replies and rejects other shapes', () => {
    assert.ok(isReply({ Cmd: 'hello', Id: 1, Code: 0, Result: {} }));
    assert.ok(isReply({ Cmd: null, Id: null, Code: -3, Result: null, Error: { Type: 'bad-checksum', Message: 'x', Traceback: null } }));
    assert.ok(!isReply({ Cmd: 'hello', Id: 1, Code: -1, Result: null }), 'failure without Error');
    assert.ok(!isReply({ Cmd: 'hello', Id: '1', Code: 0 }), 'string Id');
    assert.ok(!isReply({ Cmd: 'hello', Id: 1, Code: 0.5 }), 'fractional Code');
    assert.ok(!isReply({ Id: 1, Code: 0 }), 'missing Cmd');
  });
});
