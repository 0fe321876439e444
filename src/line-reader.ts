/**
 * Splits a byte stream into lines without losing any: a line is checked to be
 * valid UTF-8 (a bad one is reported, not silently repaired), a final line
 * without a newline still counts, and reading can be stopped between chunks.
 */

/** A line of input, or the raw text of a line that was not valid UTF-8. */
export type InputLine = { text: string; badUtf8: boolean };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Lines of a byte stream, a batch per chunk read (one await per chunk, not per
 * line); `shouldStop()` ends reading after the lines already received.
 */
export async function* readLines(
  input: AsyncIterable<Buffer>,
  shouldStop: () => boolean = () => false,
): AsyncGenerator<InputLine[]> {
  let pieces: Buffer[] = [];
  for await (const chunk of input) {
    const lines: InputLine[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      let bytes = chunk.subarray(start, nl);
      if (pieces.length > 0) {
        pieces.push(bytes);
        bytes = Buffer.concat(pieces);
        pieces = [];
      }
      start = nl + 1;
      lines.push(decode(bytes));
    }
    if (start < chunk.length) pieces.push(chunk.subarray(start));
    if (lines.length > 0) yield lines;
    if (shouldStop()) return;
  }
  if (pieces.length > 0) yield [decode(Buffer.concat(pieces))];
}

function decode(bytes: Buffer): InputLine {
  if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1);
  const text = bytes.toString('utf8');
  // toString repairs bad bytes with U+FFFD; only then is the strict (slower) check worth doing.
  if (!text.includes('\uFFFD')) return { text, badUtf8: false };
  try {
    strictUtf8.decode(bytes);
    return { text, badUtf8: false };
  } catch {
    return { text, badUtf8: true };
  }
}
