/**
 * Buffered line output with backpressure: lines are gathered and written in
 * large chunks (one write per turn, or per 64 KiB), and `ready()` waits while
 * the destination is not draining, so a slow reader pauses the whole stage.
 */
import type { Writable } from 'node:stream';

const CHUNK = 64 * 1024;

/** Gathers lines and writes them to a stream in big chunks. */
export class LineWriter {
  private pending = '';
  private scheduled = false;
  private draining: Promise<void> | null = null;

  constructor(private readonly stream: Writable, private readonly ownsStream = false) {}

  add(line: string): void {
    this.pending += line + '\n';
    if (this.pending.length >= CHUNK) this.write();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.write();
      });
    }
  }

  /** Resolves when the stream can take more. */
  async ready(): Promise<void> {
    if (this.draining) await this.draining;
  }

  /** Write everything gathered and, for a file, close it. */
  async end(): Promise<void> {
    this.write();
    await this.ready();
    if (this.ownsStream) await new Promise((resolve) => this.stream.end(resolve));
  }

  private write(): void {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    // A reader that went away (EPIPE) can take nothing more; the owner hears of it through 'error'.
    if (this.stream.destroyed) return;
    if (!this.stream.write(text) && !this.draining) {
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
