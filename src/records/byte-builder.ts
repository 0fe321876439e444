/**
 * Bytes assembled in one growing buffer: the text, ASCII, byte spans and decimals records are made
 * of. The CLI's LineWriter writes what it gathers to a stream; RecordBytes hands out one record at a time.
 */
import { copyBytes, writeDecimal } from './bytes.js';

export class ByteBuilder {
  protected length = 0;

  constructor(protected buf: Buffer) {}

  /** Append text (UTF-8). */
  text(text: string): this {
    this.reserve(text.length * 3);
    this.length += this.buf.write(text, this.length, 'utf8');
    return this;
  }

  /** Append ASCII text (digits, fixed JSON punctuation): no UTF-8 encoding needed. */
  ascii(text: string): this {
    this.reserve(text.length);
    this.length += this.buf.write(text, this.length, 'latin1');
    return this;
  }

  /** Append bytes [start, end) of `src`. */
  bytes(src: Uint8Array, start = 0, end = src.length): this {
    this.reserve(end - start);
    this.length = copyBytes(this.buf, this.length, src, start, end);
    return this;
  }

  /** Append a non-negative safe integer in decimal. */
  decimal(n: number): this {
    this.reserve(16);
    this.length = writeDecimal(this.buf, this.length, n);
    return this;
  }

  /** Room for `n` more bytes. */
  protected reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.length + n, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

/** One record at a time: `take` hands out what was appended since the last take as a Buffer of its own. */
export class RecordBytes extends ByteBuilder {
  constructor() {
    super(Buffer.allocUnsafe(4096));
  }

  take(): Buffer {
    const record = Buffer.allocUnsafe(this.length);
    this.buf.copy(record, 0, 0, this.length);
    this.length = 0;
    return record;
  }
}
