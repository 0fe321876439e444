/**
 * Where the records of a Redis run go: a stream (RedisSink), or lines on a byte stream (stdout,
 * stderr, an --errors file opened for appending). A write resolves once the bytes are handed to
 * the operating system (or Redis), which is what acknowledging an entry waits for.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { RedisSink } from './redis-sink.js';

/** A destination of output or error records: a stream, or JSON lines on a byte stream. */
export type RecordTarget = RedisSink | LineTarget;

/** What the API accepts as a destination: a RedisSink, a LineTarget, or any Writable (lines). */
export function toTarget(target: RedisSink | LineTarget | Writable): RecordTarget {
  return target instanceof RedisSink || target instanceof LineTarget ? target : new LineTarget(target, false);
}

/** Records as JSON lines on a byte stream. */
export class LineTarget {
  /** `owns`: closing the target ends the stream. */
  constructor(private readonly stream: Writable, private readonly owns: boolean) {}

  /** Append a file (never truncate it: its records may belong to entries acknowledged long ago). */
  static appendingTo(path: string): Promise<LineTarget> {
    return new Promise((resolve, reject) => {
      const stream = createWriteStream(path, { flags: 'a' });
      stream.once('open', () => resolve(new LineTarget(stream, true)));
      stream.once('error', reject);
    });
  }

  /** Write records, one per line; resolves once written. */
  write(records: Buffer[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const parts: Buffer[] = [];
    for (const record of records) parts.push(record, NEWLINE);
    return new Promise((resolve, reject) => {
      this.stream.write(Buffer.concat(parts), (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (this.owns) await new Promise((resolve) => this.stream.end(resolve));
  }
}

const NEWLINE = Buffer.from('\n');
