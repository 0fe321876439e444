/**
 * Buffered line output with backpressure: lines are assembled as bytes in one buffer and
 * written in large chunks (one write per turn, or per 64 KiB), and `ready()` waits while the
 * destination is not draining, so a slow reader pauses the whole stage.
 */
import type { Writable } from 'node:stream';
import { ByteBuilder } from '../records/byte-builder.js';

const CHUNK = 64 * 1024;

/** Gathers lines as bytes and writes them to a stream in big chunks. */
export class LineWriter extends ByteBuilder {
  /** Buffers the stream is done with, reused so a long run does not allocate one per chunk. */
  private readonly spare: Buffer[] = [];
  private scheduled = false;
  private draining: Promise<void> | null = null;
  /** Bytes handed to the stream so far. */
  handed = 0;

  constructor(private readonly stream: Writable, private readonly ownsStream = false) {
    super(Buffer.allocUnsafe(CHUNK * 2));
  }

  /** End the current line. */
  endLine(): void {
    this.reserve(1);
    this.buf[this.length++] = 10;
    if (this.length >= CHUNK) this.write();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.write();
      });
    }
  }

  /** A whole line of text. */
  add(line: string): void {
    this.text(line).endLine();
  }

  /** Resolves when the stream can take more. */
  async ready(): Promise<void> {
    if (this.draining) await this.draining;
  }

  /** Hand everything gathered to the stream now (before a forced exit). */
  flush(): void {
    this.write();
  }

  /** Write everything gathered and, for a file, close it. */
  async end(): Promise<void> {
    this.write();
    await this.ready();
    if (this.ownsStream) await new Promise((resolve) => this.stream.end(resolve));
  }

  private write(): void {
    if (this.length === 0) return;
    // The stream keeps what it is given until written: hand it these bytes, and fill a fresh buffer.
    const full = this.buf;
    const chunk = full.subarray(0, this.length);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(CHUNK * 2);
    this.length = 0;
    // A reader that went away (EPIPE) can take nothing more; the owner hears of it through 'error'.
    if (this.stream.destroyed) return;
    this.handed += chunk.length;
    const written = (err?: Error | null) => {
      if (!err && full.length === CHUNK * 2 && this.spare.length < 4) this.spare.push(full);
    };
    if (!this.stream.write(chunk, written) && !this.draining) {
      this.draining = new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('close', done);
          this.draining = null;
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('close', done);
      });
    }
  }
}
