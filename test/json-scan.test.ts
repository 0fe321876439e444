/**
 * Tests of the byte scanners in src/protocol/json-scan.ts. Every expected value comes from an independent
 * oracle: JSON.parse / JSON.stringify of the same text, or literals written by hand. Spans found by
 * the scanners are sliced out of the UTF-8 bytes and handed to JSON.parse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Scan, isNull, scanObject, splitArray, valueEnd } from '../src/protocol/json-scan.js';
import { seededRandom } from './support/seeded-random.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const names = (...ns: string[]): Buffer[] => ns.map(utf8);

/** Run scanObject over the whole of `text` for `wanted`; returns the result code and the spans. */
function scan(text: string | Buffer, wanted: readonly string[]): { code: number; out: Int32Array; buf: Buffer } {
  const buf = typeof text === 'string' ? utf8(text) : text;
  const out = new Int32Array(wanted.length * 2).fill(12345);
  const code = scanObject(buf, 0, buf.length, names(...wanted), out);
  return { code, out, buf };
}

/** JSON.parse of buf[s, e), decoded as UTF-8. */
const parseSpan = (buf: Uint8Array, s: number, e: number): unknown => JSON.parse(Buffer.from(buf.subarray(s, e)).toString('utf8'));

/** Asserts that the spans in `out` for `wanted` agree with the JSON.parse oracle over the same text. */
function checkSpans(buf: Buffer, wanted: readonly string[], out: Int32Array, oracle: Record<string, unknown>): void {
  wanted.forEach((name, k) => {
    const s = out[2 * k]!;
    const e = out[2 * k + 1]!;
    if (Object.hasOwn(oracle, name)) {
      assert.ok(s >= 0 && e > s, `span of ${JSON.stringify(name)} present: got ${s}..${e}`);
      assert.deepEqual(parseSpan(buf, s, e), oracle[name], `value of ${JSON.stringify(name)}`);
    } else {
      assert.deepEqual([s, e], [-1, -1], `absent name ${JSON.stringify(name)}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG and a JSON writer that varies whitespace and escapes names. The writer only
// produces text; what that text means is always decided by JSON.parse.

const prng = seededRandom;

const SPACES = [' ', '\t', '\n', '\r', '  ', ' \r\n '];

/** Whitespace (often none). */
function ws(rnd: () => number): string {
  return rnd() < 0.6 ? '' : SPACES[Math.floor(rnd() * SPACES.length)]!;
}

/** A JSON string literal for `s`, with some characters written as \uXXXX or `\/`. */
function quoteVaried(s: string, rnd: () => number, escapeRate: number): string {
  let body = '';
  // Whole code points (a surrogate pair is escaped as both halves or not at all: a lone raw half
  // would not survive UTF-8 encoding).
  for (const unit of JSON.stringify(s).slice(1, -1).match(/\\u[0-9a-fA-F]{4}|\\.|[\s\S]/gu) ?? []) {
    if (!unit.startsWith('\\') && rnd() < escapeRate) {
      if (unit === '/' && rnd() < 0.5) body += '\\/';
      else for (let i = 0; i < unit.length; i++) body += '\\u' + unit.charCodeAt(i).toString(16).padStart(4, '0');
    } else {
      body += unit;
    }
  }
  return '"' + body + '"';
}

/** Write `v` as JSON with random whitespace between tokens and (when asked) escaped member names. */
function writeVaried(v: Json, rnd: () => number, escapeNames: number): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + ws(rnd) + v.map((x) => ws(rnd) + writeVaried(x, rnd, escapeNames) + ws(rnd)).join(',') + ws(rnd) + ']';
  const members = Object.keys(v).map(
    (k) => ws(rnd) + quoteVaried(k, rnd, escapeNames) + ws(rnd) + ':' + ws(rnd) + writeVaried(v[k]!, rnd, escapeNames) + ws(rnd),
  );
  return '{' + ws(rnd) + members.join(',') + ws(rnd) + '}';
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.

/** Strings full of the characters a byte scanner could trip on. */
const trickyString = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', '\\', '\\"', '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '/', '\u0000', '\u001f', 'key', 'é', 'ü', '€', '😀', '\u2028'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 12,
});
/** Names, biased towards the ones the tests look for. */
const nameArb = fc.oneof(fc.constantFrom('key', 'route', 'a', 'kéy', '', 'k"y', 'k\\y'), trickyString);

/** JSON values with tricky strings and names; nested members are often called "key" too. */
const { json: trickyJson } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    trickyString,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(nameArb, tie('json'), { maxKeys: 4 }),
  ),
}));

/** Any JSON value: fast-check's own generator (full unicode or raw UTF-16 code units) and the tricky one. */
const anyJson: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }) as fc.Arbitrary<Json>,
  fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }) as fc.Arbitrary<Json>,
  trickyJson,
);

/** An object, sometimes with a "key" member of any type somewhere among its members. */
const objectArb: fc.Arbitrary<Record<string, Json>> = fc
  .tuple(
    fc.oneof(
      fc.dictionary(nameArb, anyJson, { maxKeys: 6 }),
      fc.object({ maxDepth: 2 }).map((o) => JSON.parse(JSON.stringify(o)) as Record<string, Json>),
      fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }) as fc.Arbitrary<Json>, {
        maxKeys: 5,
      }),
    ),
    fc.option(anyJson, { nil: undefined }),
    fc.nat(),
  )
  .map(([o, key, at]) => {
    if (key === undefined) return o;
    const entries = Object.entries(o).filter(([k]) => k !== 'key');
    entries.splice(at % (entries.length + 1), 0, ['key', key]);
    return Object.fromEntries(entries) as Record<string, Json>;
  });

/** A text form of an object: plain, indented, or with varied whitespace and escaped names. */
const styleArb = fc.oneof(
  fc.constant({ kind: 'plain' as const, seed: 0 }),
  fc.constant({ kind: 'indent' as const, seed: 0 }),
  fc.integer().map((seed) => ({ kind: 'varied' as const, seed })),
  fc.integer().map((seed) => ({ kind: 'escaped' as const, seed })),
);
type Style = typeof styleArb extends fc.Arbitrary<infer S> ? S : never;

function render(v: Json, style: Style): string {
  switch (style.kind) {
    case 'plain':
      return JSON.stringify(v);
    case 'indent':
      return JSON.stringify(v, null, 2);
    case 'varied':
      return writeVaried(v, prng(style.seed), 0);
    case 'escaped':
      return writeVaried(v, prng(style.seed), 0.4);
  }
}

// =============================================================================================
// scanObject on valid objects.

test('scanObject: hand-written objects', () => {
  // [text, wanted names, the exact value text expected for each name (null: absent)]
  const cases: [string, string[], (string | null)[]][] = [
    ['{"key":"abc","route":7}', ['key', 'route'], ['"abc"', '7']],
    ['{}', ['key'], [null]],
    ['{ }', ['key'], [null]],
    [' \t\r\n{ "key" : [1, {"x":"}"}] , "b":null }\n ', ['key', 'b', 'c'], ['[1, {"x":"}"}]', 'null', null]],
    ['{"a":{"key":1},"key":{"a":2}}', ['key', 'a'], ['{"a":2}', '{"key":1}']],
    ['{"key":"a\\"b","x":"\\\\"}', ['key', 'x'], ['"a\\"b"', '"\\\\"']],
    ['{"route":"é😀","key":-0.5e-3}', ['key', 'route'], ['-0.5e-3', '"é😀"']],
  ];
  for (const [text, wanted, expected] of cases) {
    const { code, out, buf } = scan(text, wanted);
    assert.equal(code, Scan.OBJECT, text);
    expected.forEach((v, k) => {
      if (v === null) assert.deepEqual([out[2 * k], out[2 * k + 1]], [-1, -1], `${text} ${wanted[k]}`);
      else assert.equal(buf.subarray(out[2 * k]!, out[2 * k + 1]!).toString('utf8'), v, `${text} ${wanted[k]}`);
    });
    checkSpans(buf, wanted, out, JSON.parse(text) as Record<string, unknown>);
  }
});

test('scanObject: the value of each wanted member equals JSON.parse(text)[name] (property)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(objectArb, styleArb, fc.array(nameArb, { maxLength: 3 }), (obj, style, extra) => {
      const text = render(obj, style);
      const oracle = JSON.parse(text) as Record<string, unknown>;
      const wanted = [...new Set(['key', ...Object.keys(oracle).slice(0, 4), ...extra, 'absent\u0001name'])];
      const { code, out, buf } = scan(text, wanted);
      assert.equal(code, Scan.OBJECT);
      checkSpans(buf, wanted, out, oracle);
    }),
    { numRuns: 1500 },
  );
});

test('scanObject: spans are absolute indices into the buffer when scanning a slice of it', () => {
  fc.assert(
    fc.property(objectArb, styleArb, trickyString, trickyString, (obj, style, before, after) => {
      const text = render(obj, style);
      const pre = utf8(before);
      const body = utf8(text);
      const buf = Buffer.concat([pre, body, utf8(after)]);
      const wanted = [...new Set(['key', ...Object.keys(obj).slice(0, 2)])];
      const out = new Int32Array(wanted.length * 2);
      assert.equal(scanObject(buf, pre.length, pre.length + body.length, names(...wanted), out), Scan.OBJECT);
      checkSpans(buf, wanted, out, JSON.parse(text) as Record<string, unknown>);
      // A Uint8Array view that is not a Buffer, starting part-way into its ArrayBuffer.
      const view = new Uint8Array(buf.buffer, buf.byteOffset + pre.length, body.length);
      const out2 = new Int32Array(wanted.length * 2);
      assert.equal(scanObject(view, 0, view.length, names(...wanted), out2), Scan.OBJECT);
      checkSpans(Buffer.from(view), wanted, out2, JSON.parse(text) as Record<string, unknown>);
    }),
    { numRuns: 300 },
  );
});

test('scanObject: duplicate names — the last one wins, as in JSON.parse', () => {
  const texts = [
    '{"key":1,"key":2}',
    '{"key":{"key":3},"a":0,"key":"last"}',
    '{"key":[1,2],"k\\u0065y":null}',
    '{"k\\u0065y":true,"key":false}',
    '{"key":1,"a":{"key":9},"key":2,"b":[{"key":8}]}',
  ];
  for (const text of texts) {
    const { code, out, buf } = scan(text, ['key', 'a']);
    assert.equal(code, Scan.OBJECT, text);
    checkSpans(buf, ['key', 'a'], out, JSON.parse(text) as Record<string, unknown>);
  }
});

test('scanObject: duplicate names (property over member lists written by hand)', () => {
  const member = fc.tuple(fc.constantFrom('key', 'route', 'a', 'kéy'), anyJson, fc.boolean());
  fc.assert(
    fc.property(fc.array(member, { maxLength: 8 }), fc.integer(), (members, seed) => {
      const rnd = prng(seed);
      const text =
        '{' +
        members.map(([n, v, esc]) => ws(rnd) + quoteVaried(n, rnd, esc ? 0.5 : 0) + ws(rnd) + ':' + ws(rnd) + writeVaried(v, rnd, 0.2) + ws(rnd)).join(',') +
        ws(rnd) +
        '}';
      const oracle = JSON.parse(text) as Record<string, unknown>;
      const wanted = ['key', 'route', 'a', 'kéy', 'b'];
      const { code, out, buf } = scan(text, wanted);
      assert.equal(code, Scan.OBJECT);
      checkSpans(buf, wanted, out, oracle);
    }),
    { numRuns: 1000 },
  );
});

test('scanObject: member names written with escapes still match', () => {
  const texts = [
    '{"k\\u0065y":42}',
    '{"\\u006b\\u0065\\u0079":42}',
    '{"\\u006B\\u0065\\u0079":42}',
    '{"k\\u00e9y":42}',
    '{"ke\\u0079" : 42 }',
  ];
  for (const text of texts) {
    const oracle = JSON.parse(text) as Record<string, unknown>;
    const { code, out, buf } = scan(text, ['key', 'kéy']);
    assert.equal(code, Scan.OBJECT, text);
    checkSpans(buf, ['key', 'kéy'], out, oracle);
    assert.deepEqual(parseSpan(buf, out[0] === -1 ? out[2]! : out[0]!, out[0] === -1 ? out[3]! : out[1]!), 42, text);
  }
  // Names that need escapes to be written at all.
  for (const name of ['a"b', 'a\\b', 'tab\there', 'nl\nhere', '\u0000', 'emoji😀', 'a/b']) {
    const text = `{"x":1,${quoteVaried(name, prng(1), 0)}:"v",${JSON.stringify(name + '!')}:2}`;
    const { code, out, buf } = scan(text, [name, name + '!', 'x']);
    assert.equal(code, Scan.OBJECT, text);
    checkSpans(buf, [name, name + '!', 'x'], out, JSON.parse(text) as Record<string, unknown>);
  }
  // An escaped name that does not decode to the wanted one must not match.
  const { out } = scan('{"k\\u0065z":1,"ke\\\\y":2}', ['key']);
  assert.deepEqual([...out], [-1, -1]);
});

test('scanObject: members nested deeper than the top level never match', () => {
  const texts = [
    '{"a":{"key":1}}',
    '{"a":[{"key":1}]}',
    '{"a":[[{"b":{"key":1}}]],"c":{"key":[]}}',
    '{"a":["key",":","key"]}',
    '{"a":"\\"key\\":1"}',
    '{"a":{"x":1,"key":2},"b":[1,{"key":3}]}',
  ];
  for (const text of texts) {
    const { code, out } = scan(text, ['key']);
    assert.equal(code, Scan.OBJECT, text);
    assert.equal(Object.hasOwn(JSON.parse(text) as object, 'key'), false);
    assert.deepEqual([...out], [-1, -1], text);
  }
  // A string value that spells a wanted name is a value, not a name.
  const { out, buf } = scan('{"a":"key","key":"a"}', ['key', 'a']);
  assert.deepEqual(parseSpan(buf, out[0]!, out[1]!), 'a');
  assert.deepEqual(parseSpan(buf, out[2]!, out[3]!), 'key');
});

test('scanObject: leading and trailing whitespace is allowed; spans exclude whitespace around values', () => {
  for (const [pre, post] of [
    ['', ''],
    [' ', ' '],
    ['\n\r\t ', '\r\n'],
    ['', '\n'],
    ['\t', ''],
  ] as const) {
    const text = `${pre}{ "key" :\t"v" \n, "n": -1.5e3 }${post}`;
    const { code, out, buf } = scan(text, ['key', 'n']);
    assert.equal(code, Scan.OBJECT);
    assert.equal(buf.subarray(out[0]!, out[1]!).toString(), '"v"');
    assert.equal(buf.subarray(out[2]!, out[3]!).toString(), '-1.5e3');
  }
});

test('scanObject: a name given twice in `names` gets the span in both slots', () => {
  // The contract: "For each name in `names`, writes the span of the value of the LAST top-level
  // member with that name". stage-run.ts passes [keyField, routeField], and options do not forbid
  // the two being the same field (e.g. partition by the model a message is routed to).
  const text = '{"model":"m1","x":1}';
  const { code, out, buf } = scan(text, ['model', 'model']);
  assert.equal(code, Scan.OBJECT);
  assert.equal(buf.subarray(out[2]!, out[3]!).toString(), '"m1"');
  assert.deepEqual([...out], [9, 13, 9, 13]);
});

test('scanObject: with no wanted names it still classifies', () => {
  const out = new Int32Array(0);
  assert.equal(scanObject(utf8('{"a":1}'), 0, 7, [], out), Scan.OBJECT);
  assert.equal(scanObject(utf8('{"a":1'), 0, 6, [], out), Scan.UNBALANCED);
});

// =============================================================================================
// scanObject rejections.

test('scanObject: rejections', () => {
  const cases: [string, number][] = [
    ['', Scan.EMPTY],
    [' ', Scan.EMPTY],
    ['\t\r\n ', Scan.EMPTY],
    ['[1]', Scan.NOT_OBJECT],
    ['"s"', Scan.NOT_OBJECT],
    ['1', Scan.NOT_OBJECT],
    ['null', Scan.NOT_OBJECT],
    ['x', Scan.NOT_OBJECT],
    ['  [{"a":1}]', Scan.NOT_OBJECT],
    ['}', Scan.NOT_OBJECT],
    ['{"a":1', Scan.UNBALANCED],
    ['{"a":"}', Scan.UNBALANCED],
    ['{"a":1}}', Scan.UNBALANCED],
    ['{"a":1} {"b":2}', Scan.UNBALANCED],
    ['{"a":1},{"b":2}', Scan.UNBALANCED],
    ['{', Scan.UNBALANCED],
    ['{"a":{"b":1}', Scan.UNBALANCED],
    ['{"a":"\\"}', Scan.UNBALANCED],
    ['{"a":1} x', Scan.UNBALANCED],
    ['{"a":1}\n{"b":2}', Scan.UNBALANCED],
  ];
  for (const [text, expected] of cases) {
    const { code, out } = scan(text, ['a', 'b']);
    assert.equal(code, expected, JSON.stringify(text));
    // For EMPTY and NOT_OBJECT nothing was found, and `out` says so.
    if (code === Scan.EMPTY || code === Scan.NOT_OBJECT) assert.deepEqual([...out], [-1, -1, -1, -1], JSON.stringify(text));
  }
});

test('scanObject: a valid object cut short anywhere is UNBALANCED (or EMPTY when only whitespace is left)', () => {
  fc.assert(
    fc.property(objectArb, styleArb, fc.nat(), (obj, style, cut) => {
      const buf = utf8(render(obj, style));
      const end = cut % buf.length; // strictly shorter than the text
      const out = new Int32Array(2);
      const code = scanObject(buf, 0, end, names('key'), out);
      if (end === 0) assert.equal(code, Scan.EMPTY);
      else assert.equal(code, Scan.UNBALANCED, `cut at ${end} of ${buf.length}`);
    }),
    { numRuns: 500 },
  );
});

// =============================================================================================
// The safety property of splicing lines that pass scanObject into one JSON array.

/** Bytes a mutation writes: structure, quotes, escapes, literal letters and broken UTF-8. */
const MUTATION_BYTES = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x0a, 0x74, 0x6e, 0x30, 0x2d, 0x2e, 0x65, 0xe2, 0xf0, 0x80, 0xc3];

const mutationArb = fc.array(
  fc.tuple(fc.constantFrom('delete', 'insert', 'replace'), fc.nat(), fc.constantFrom(...MUTATION_BYTES)),
  { minLength: 1, maxLength: 3 },
);

function mutate(bytes: Buffer, edits: [string, number, number][]): Buffer {
  const a = [...bytes];
  for (const [op, at, byte] of edits) {
    const i = a.length === 0 ? 0 : at % a.length;
    if (op === 'delete') a.splice(i, 1);
    else if (op === 'insert') a.splice(i, 0, byte);
    else a[i] = byte;
  }
  return Buffer.from(a);
}

const HAND_WRITTEN_BAD = [
  '{"a":tru}',
  '{"a":[}]',
  '{"a":1]',
  '{"a":[1}]',
  '{"a":{]}',
  '{"a":}',
  '{"a"}',
  '{,}',
  '{"a":1,}',
  '{"a":"x" "y"}',
  '{"a":"\\q"}',
  '{"a":01}',
  '{a:1}',
  "{'a':1}",
  '{"a":1 "b":2}',
  '{"a":"\u0001"}',
  '{"a":"\n"}',
  '{"a":[1,]}',
  '{]',
  '{"a":"],[{"]',
];

const lineArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(objectArb, styleArb).map(([o, s]) => utf8(render(o, s).replace(/\n/g, ' '))) },
  { weight: 3, arbitrary: fc.tuple(objectArb, styleArb, mutationArb).map(([o, s, m]) => mutate(utf8(render(o, s)), m)) },
  { weight: 1, arbitrary: fc.constantFrom(...HAND_WRITTEN_BAD).map(utf8) },
);

const passes = (line: Buffer): boolean => scanObject(line, 0, line.length, [], new Int32Array(0)) === Scan.OBJECT;

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

test('the hand-written balanced-but-invalid lines pass scanObject and fail JSON.parse', () => {
  for (const text of HAND_WRITTEN_BAD) {
    assert.equal(passes(utf8(text)), true, text);
    assert.equal(tryParse(text).ok, false, text);
  }
});

/**
 * The safety property for one list of candidate lines: keep those that pass scanObject, splice them
 * with `sep`; if the splice parses, every kept line parses alone to its element. Returns whether the
 * splice parsed, and whether any kept line was invalid on its own.
 */
function checkSplice(candidates: readonly Buffer[], sep: string): { parsed: boolean; invalid: boolean } {
  const lines = candidates.filter(passes);
  if (lines.length === 0) return { parsed: false, invalid: false };
  const parts: Buffer[] = [utf8('[')];
  lines.forEach((l, i) => parts.push(...(i === 0 ? [l] : [utf8(sep), l])));
  parts.push(utf8(']'));
  const whole = tryParse(Buffer.concat(parts).toString('utf8'));
  const singles = lines.map((l) => tryParse(l.toString('utf8')));
  const invalid = singles.some((s) => !s.ok);
  if (!whole.ok) return { parsed: false, invalid };
  assert.ok(Array.isArray(whole.value));
  assert.equal((whole.value as unknown[]).length, lines.length, 'one element per line');
  singles.forEach((s, i) => {
    assert.ok(s.ok, `line ${i} parses alone: ${lines[i]!.toString('utf8')}`);
    assert.deepEqual((whole.value as unknown[])[i], s.value);
  });
  return { parsed: true, invalid };
}

test('safety: if the spliced array of scanObject-passing lines parses, each line parses alone to its element (property)', { timeout: 60_000 }, () => {
  let parsedWholes = 0;
  let withInvalid = 0;
  fc.assert(
    // The request joins with ',\n' (a raw newline can never be inside a JSON string); the property
    // also holds with a plain ',' because the scanner lexes strings exactly as JSON does.
    fc.property(fc.array(lineArb, { minLength: 1, maxLength: 6 }), fc.constantFrom(',\n', ',\n', ',', ', '), (candidates, sep) => {
      const { parsed, invalid } = checkSplice(candidates, sep);
      if (parsed) parsedWholes++;
      if (invalid) withInvalid++;
    }),
    { numRuns: 3000 },
  );
  // The property is not vacuous: many splices parsed, and invalid lines were in the mix.
  assert.ok(parsedWholes > 300, `parsed wholes: ${parsedWholes}`);
  assert.ok(withInvalid > 300, `runs with invalid lines: ${withInvalid}`);
});

test('safety: hand-made splices that would fool a scanner lexing strings differently from JSON', () => {
  // Each pair spliced with ',' parses as ONE element if the first line's string swallows the
  // separator; the first line must therefore not pass scanObject.
  const attacks: [string, string][] = [
    ['{"a":"\\"}', '{\\""}'], // [{"a":"\"},{\""}] is one object: {a: '"},{"'}
    ['{"a":"\\\\\\"}', '{"b":"\\""}'],
    ['{"a":"x\\"}', '{"y":"\\",\\"}'],
    ['{"a":"\\u0022"}', '{"b":1}'],
  ];
  for (const [l1, l2] of attacks) {
    for (const sep of [',', ',\n', ', ']) checkSplice([utf8(l1), utf8(l2)], sep);
  }
  // The first one, concretely: the splice is valid JSON with one element, and scanObject rejects line 1.
  const [l1, l2] = attacks[0]!;
  assert.deepEqual(JSON.parse(`[${l1},${l2}]`), [{ a: '"},{"' }]);
  assert.equal(passes(utf8(l1)), false);
  assert.equal(passes(utf8(l2)), true);
});

// =============================================================================================
// splitArray.

function split(text: string | Buffer, slots?: number): { n: number; out: Int32Array; buf: Buffer } {
  const buf = typeof text === 'string' ? utf8(text) : text;
  const out = new Int32Array(slots ?? 2 * buf.length + 2);
  return { n: splitArray(buf, 0, buf.length, out), out, buf };
}

function checkSplit(buf: Buffer, n: number, out: Int32Array, expected: unknown[]): void {
  assert.equal(n, expected.length);
  for (let k = 0; k < n; k++) assert.deepEqual(parseSpan(buf, out[2 * k]!, out[2 * k + 1]!), expected[k], `element ${k}`);
}

test('splitArray: hand-written arrays', () => {
  for (const text of ['[1]', '[1,2,3]', '[ 1 , "a,b" , [2,[3]] , {"x":"]"} , null ]', '["\\"],", "\\\\"]', '[[],{},""]', '\n[\ttrue,false\n]\n']) {
    const { n, out, buf } = split(text);
    checkSplit(buf, n, out, JSON.parse(text) as unknown[]);
  }
  const { out } = split('[ 10 ,"x"]');
  assert.deepEqual([...out.subarray(0, 4)], [2, 4, 6, 9]);
});

test('splitArray: elements of JSON.stringify(array) deep-equal the array (property)', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(
      fc.array(anyJson, { maxLength: 8 }),
      fc.oneof(
        fc.constant<(v: Json[]) => string>((v) => JSON.stringify(v)),
        fc.constant<(v: Json[]) => string>((v) => JSON.stringify(v, null, 1)),
        fc.constant<(v: Json[]) => string>((v) => JSON.stringify(v, null, '\t')),
        fc.integer().map((seed) => (v: Json[]) => writeVaried(v, prng(seed), 0.2)),
      ),
      (arr, write) => {
        const text = write(arr);
        const expected = JSON.parse(text) as unknown[];
        const { n, out, buf } = split(text, 2 * expected.length);
        checkSplit(buf, n, out, expected);
      },
    ),
    { numRuns: 1500 },
  );
});

test('splitArray: a slice of a larger buffer', () => {
  fc.assert(
    fc.property(fc.array(anyJson, { maxLength: 5 }), trickyString, trickyString, (arr, before, after) => {
      const text = JSON.stringify(arr, null, 1);
      const pre = utf8(before);
      const body = utf8(text);
      const buf = Buffer.concat([pre, body, utf8(after)]);
      const out = new Int32Array(2 * arr.length);
      const n = splitArray(buf, pre.length, pre.length + body.length, out);
      checkSplit(buf, n, out, JSON.parse(text) as unknown[]);
    }),
    { numRuns: 300 },
  );
});

test('splitArray: empty arrays give 0', () => {
  for (const text of ['[]', '[ ]', ' [\n] ', '\t[\r\n\t]']) {
    assert.equal(split(text).n, 0, JSON.stringify(text));
    assert.equal(split(text, 0).n, 0, JSON.stringify(text));
  }
});

test('splitArray: an `out` too small gives -1', () => {
  assert.equal(split('[1]', 0).n, -1);
  assert.equal(split('[1]', 1).n, -1);
  assert.equal(split('[1]', 2).n, 1);
  assert.equal(split('[1,2,3]', 5).n, -1);
  assert.equal(split('[1,2,3]', 4).n, -1);
  assert.equal(split('[1,2,3]', 6).n, 3);
  fc.assert(
    fc.property(fc.array(anyJson, { minLength: 1, maxLength: 6 }), fc.nat(), (arr, short) => {
      const slots = short % (2 * arr.length); // always fewer than needed
      assert.equal(split(JSON.stringify(arr), slots).n, -1);
    }),
    { numRuns: 300 },
  );
});

test('splitArray: non-arrays give -1', () => {
  for (const text of ['', '   ', '{"a":[1,2]}', '1', '"[1,2]"', 'null', 'true', 'x[1]', '[1,2', '["a]', '["a\\"]', '[[1],[2]']) {
    assert.equal(split(text).n, -1, JSON.stringify(text));
  }
});

// =============================================================================================
// valueEnd and isNull.

test('valueEnd: each value type at an offset inside a larger buffer', () => {
  const values = [
    '"abc"',
    '""',
    '"a\\"b"',
    '"\\\\"',
    '"\\\\\\""',
    '"}],{["',
    '"héllo 😀"',
    '"\\u00e9\\ud83d\\ude00"',
    '0',
    '-12.5e+3',
    '1E-7',
    'true',
    'false',
    'null',
    '{}',
    '[]',
    '{"a":[1,{"b":"}"}],"c":null}',
    '[1,"]",[2,[3]],{"x":{}}]',
    '[ 1 , 2 ]',
  ];
  const frames = [
    ['[', ']'],
    ['{"k":', '}'],
    ['{"k":', ',"z":1}'],
    ['[0,', ',0]'],
    ['{"k": \n', ' }'],
    ['garbage{[', ' trailing'],
  ];
  for (const v of values) {
    assert.doesNotThrow(() => JSON.parse(v), v); // each is valid JSON on its own
    for (const [pre, post] of frames) {
      const pb = utf8(pre!);
      const vb = utf8(v);
      const buf = Buffer.concat([pb, vb, utf8(post!)]);
      // Leading whitespace before the value is skipped: start before the whitespace in the frame, if any.
      const start = pre!.trimEnd().length === pre!.length ? pb.length : utf8(pre!.trimEnd()).length;
      assert.equal(valueEnd(buf, start, buf.length), pb.length + vb.length, `${pre}${v}${post}`);
    }
  }
  // A number or literal that runs to `end` ends there.
  for (const v of ['42', 'true', 'null', '-0.5']) {
    const buf = utf8('xx' + v + 'yy');
    assert.equal(valueEnd(buf, 2, 2 + v.length), 2 + v.length, v);
  }
});

test('valueEnd: agrees with JSON.stringify lengths for random values (property)', () => {
  fc.assert(
    fc.property(anyJson, trickyString, fc.constantFrom(',', ']', '}', ' ', '\n', ',"k":1}'), fc.constantFrom('', ' ', '\n\t'), (v, before, after, space) => {
      const pre = utf8(before + space);
      const body = utf8(JSON.stringify(v));
      const buf = Buffer.concat([pre, body, utf8(after + 'tail')]);
      const start = utf8(before).length; // whitespace before the value is skipped
      const e = valueEnd(buf, start, buf.length);
      assert.equal(e, pre.length + body.length);
      assert.deepEqual(parseSpan(buf, pre.length, e), JSON.parse(JSON.stringify(v)));
    }),
    { numRuns: 1000 },
  );
});

test('valueEnd: -1 when the value does not end before `end`', () => {
  for (const text of ['', '   ', '"abc', '"a\\"', '{"a":1', '[1,2', '[[]', '{"a":"}"']) {
    const buf = utf8(text);
    assert.equal(valueEnd(buf, 0, buf.length), -1, JSON.stringify(text));
  }
  // `end` cuts a value that is complete further on in the buffer.
  const buf = utf8('{"a":[1,2]} "str"');
  assert.equal(valueEnd(buf, 0, buf.length), 11);
  for (let end = 1; end < 11; end++) assert.equal(valueEnd(buf, 0, end), -1, `end ${end}`);
  assert.equal(valueEnd(buf, 11, buf.length), buf.length);
  assert.equal(valueEnd(buf, 11, buf.length - 1), -1);
});

test('isNull', () => {
  const buf = utf8('[null,nul,nulll,"null",Null,null]');
  assert.equal(isNull(buf, 1, 5), true);
  assert.equal(isNull(buf, 6, 9), false);
  assert.equal(isNull(buf, 10, 15), false);
  assert.equal(isNull(buf, 10, 14), true); // the first four bytes of "nulll"
  assert.equal(isNull(buf, 16, 22), false);
  assert.equal(isNull(buf, 17, 21), true); // inside the quotes: the bytes are n u l l
  assert.equal(isNull(buf, 23, 27), false);
  assert.equal(isNull(buf, 28, 32), true);
  assert.equal(isNull(buf, 1, 1), false);
  assert.equal(isNull(utf8(''), 0, 0), false);
  for (const v of ['true', 'false', '0', '""', '[]', '{}', 'nuLL', ' null']) assert.equal(isNull(utf8(v), 0, utf8(v).length), false, v);
  // Agrees with JSON.parse(...) === null for the spans of a split array.
  const text = JSON.stringify([null, 'null', 0, false, [null], { n: null }, null]);
  const b = utf8(text);
  const out = new Int32Array(14);
  const n = splitArray(b, 0, b.length, out);
  for (let k = 0; k < n; k++) {
    const s = out[2 * k]!;
    const e = out[2 * k + 1]!;
    assert.equal(isNull(b, s, e), parseSpan(b, s, e) === null, `element ${k}`);
  }
});
