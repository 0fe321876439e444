/**
 * Byte scanners over JSON text that find structure without building values: the hot path
 * reads a message's key and route, and splits a model's results, without JSON.parse.
 *
 * They do not validate JSON. `scanObject` only proves that the text is one `{…}` whose brackets
 * balance outside strings, which is what makes it safe to splice the text into a request: if the
 * whole request then parses, every message in it parsed on its own (their edges are where the
 * scanner put them). Anything else is found by the real parser at the other end, per message.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** What `scanObject` found. */
export const Scan = {
  /** One balanced object; the spans of the named members are in `out`. */
  OBJECT: 0,
  /** Nothing but whitespace. */
  EMPTY: 1,
  /** The text does not start with `{` (an array, a string, a number, garbage…). */
  NOT_OBJECT: 2,
  /** It starts with `{` but does not close exactly once at its end (truncated, or more after it). */
  UNBALANCED: 3,
} as const;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Index just past the string starting at `i` (a quote), or -1 if it does not end before `end`. */
function skipString(buf: Uint8Array, i: number, end: number): number {
  for (i++; i < end; i++) {
    const c = buf[i]!;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** True when buf[start, end) holds a backslash (a JSON string with escapes). */
export function hasBackslash(buf: Uint8Array, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (buf[k] === BACKSLASH) return true;
  return false;
}

/** True when buf[start, end) holds exactly the bytes of `name`. */
function bytesEqual(buf: Uint8Array, start: number, end: number, name: Uint8Array): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (buf[start + k] !== name[k]) return false;
  return true;
}

/** Decode a JSON member name that holds escapes, for comparison (rare: names are plain text). */
function escapedNameEquals(buf: Uint8Array, start: number, end: number, name: Uint8Array): boolean {
  try {
    const text = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + start - 1, end - start + 2).toString('utf8')) as string;
    return bytesEqual(Buffer.from(text, 'utf8'), 0, Buffer.byteLength(text), name);
  } catch {
    return false;
  }
}

/**
 * Scan buf[start, end) as one JSON object. For each name in `names`, writes the span of the
 * value of the LAST top-level member with that name (as JSON.parse keeps the last) to
 * out[2k] (start) and out[2k + 1] (end), or -1 and -1 when there is none. Values keep their
 * quotes. `out` needs 2 * names.length slots.
 */
export function scanObject(buf: Uint8Array, start: number, end: number, names: readonly Uint8Array[], out: Int32Array): number {
  // Names are a bit mask while scanning.
  if (names.length > 30) throw new RangeError('scanObject looks for at most 30 names');
  out.fill(-1, 0, names.length * 2);
  let i = start;
  while (i < end && isSpace(buf[i]!)) i++;
  if (i === end) return Scan.EMPTY;
  if (buf[i] !== OPEN_BRACE) return Scan.NOT_OBJECT;
  let depth = 0;
  // At depth 1: the name just read (its span), waiting for its value; -1 when none.
  let nameStart = -1;
  let nameEnd = -1;
  let nameEscaped = false;
  // The wanted names the pending value belongs to, as a bit mask (0: none wanted); -1 before a name's colon.
  let valueOf = -1;
  let valueStart = -1;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      const after = skipString(buf, i, end);
      if (after === -1) return Scan.UNBALANCED;
      if (depth === 1 && valueOf === -1 && nameStart === -1) {
        nameStart = i + 1;
        nameEnd = after - 1;
        nameEscaped = hasBackslash(buf, nameStart, nameEnd);
      }
      i = after - 1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      continue;
    }
    if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) {
        closeValue(out, valueOf, valueStart, i, buf);
        i++;
        while (i < end && isSpace(buf[i]!)) i++;
        return i === end ? Scan.OBJECT : Scan.UNBALANCED;
      }
      if (depth < 0) return Scan.UNBALANCED;
      continue;
    }
    if (depth !== 1) continue;
    if (c === COLON && nameStart !== -1) {
      valueOf = 0;
      for (let k = 0; k < names.length; k++) {
        const name = names[k]!;
        if (nameEscaped ? escapedNameEquals(buf, nameStart, nameEnd, name) : bytesEqual(buf, nameStart, nameEnd, name)) valueOf |= 1 << k;
      }
      valueStart = i + 1;
      nameStart = -1;
    } else if (c === COMMA) {
      closeValue(out, valueOf, valueStart, i, buf);
      valueOf = -1;
    }
  }
  return Scan.UNBALANCED;
}

/** Record the span of a wanted member's value (for every name in the mask), trimmed of whitespace, ending before `stop`. */
function closeValue(out: Int32Array, valueOf: number, valueStart: number, stop: number, buf: Uint8Array): void {
  if (valueOf <= 0) return;
  let s = valueStart;
  let e = stop;
  while (s < e && isSpace(buf[s]!)) s++;
  while (e > s && isSpace(buf[e - 1]!)) e--;
  for (let k = 0; valueOf >> k !== 0; k++) {
    if ((valueOf >> k) & 1) {
      out[k * 2] = s;
      out[k * 2 + 1] = e;
    }
  }
}

/**
 * Split the JSON array in buf[start, end) (valid JSON, e.g. produced by Python's encoder) into
 * its elements: writes element k's span to out[2k], out[2k + 1] and returns the count.
 * Returns -1 if `out` is too small or the text is not an array.
 */
export function splitArray(buf: Uint8Array, start: number, end: number, out: Int32Array): number {
  let i = start;
  while (i < end && isSpace(buf[i]!)) i++;
  if (buf[i] !== OPEN_BRACKET) return -1;
  let count = 0;
  let depth = 0;
  let elementStart = i + 1;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      const after = skipString(buf, i, end);
      if (after === -1) return -1;
      i = after - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) {
        if (!pushElement(buf, elementStart, i, out, count)) return count === 0 && onlySpace(buf, elementStart, i) ? 0 : -1;
        return count + 1;
      }
    } else if (c === COMMA && depth === 1) {
      if (!pushElement(buf, elementStart, i, out, count)) return -1;
      count++;
      elementStart = i + 1;
    }
  }
  return -1;
}

function onlySpace(buf: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (!isSpace(buf[i]!)) return false;
  return true;
}

function pushElement(buf: Uint8Array, s: number, e: number, out: Int32Array, k: number): boolean {
  while (s < e && isSpace(buf[s]!)) s++;
  while (e > s && isSpace(buf[e - 1]!)) e--;
  if (s === e || 2 * k + 1 >= out.length) return false;
  out[2 * k] = s;
  out[2 * k + 1] = e;
  return true;
}

/** True when buf[s, e) is the JSON literal `null`. */
export function isNull(buf: Uint8Array, s: number, e: number): boolean {
  return e - s === 4 && buf[s] === 0x6e && buf[s + 1] === 0x75 && buf[s + 2] === 0x6c && buf[s + 3] === 0x6c;
}

/** Index just past the JSON value starting at buf[i] (after whitespace), or -1 if it does not end before `end`. */
export function valueEnd(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isSpace(buf[i]!)) i++;
  if (i >= end) return -1;
  const c = buf[i]!;
  if (c === QUOTE) return skipString(buf, i, end);
  if (c !== OPEN_BRACE && c !== OPEN_BRACKET) {
    // A number or a literal: up to the next delimiter.
    while (i < end && buf[i] !== COMMA && buf[i] !== CLOSE_BRACE && buf[i] !== CLOSE_BRACKET && !isSpace(buf[i]!)) i++;
    return i;
  }
  let depth = 0;
  for (; i < end; i++) {
    const b = buf[i]!;
    if (b === QUOTE) {
      const after = skipString(buf, i, end);
      if (after === -1) return -1;
      i = after - 1;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      depth++;
    } else if ((b === CLOSE_BRACE || b === CLOSE_BRACKET) && --depth === 0) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * The JSON text in `buf` on one line. A batch keeps one message per line (src/engine/batch.ts), which text
 * from stdin always is; a message from elsewhere (a Redis entry's `data`) may be pretty-printed.
 * A line feed between tokens is whitespace and becomes a space, which changes no value. A line
 * feed inside a string is not valid JSON: it becomes a tab, which is not valid there either, so
 * the message still fails alone, with the parser's "invalid control character". Returns `buf`
 * itself when it holds no line feed.
 */
export function foldLineFeeds(buf: Buffer): Buffer {
  let i = buf.indexOf(0x0a);
  if (i < 0) return buf;
  const out = Buffer.from(buf);
  let inString = false;
  for (i = 0; i < out.length; i++) {
    const c = out[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      else if (c === 0x0a) out[i] = 0x09;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === 0x0a) {
      out[i] = 0x20;
    }
  }
  return out;
}

