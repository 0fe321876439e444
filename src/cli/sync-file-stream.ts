/**
 * A file opened for writing whose writes complete before `write` returns: error lines written to
 * --errors survive a forced exit (a second Ctrl-C), which fs.WriteStream's queued writes would not.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * Open `path` (truncated, or appended to with `append`) and return a Writable that writes
 * synchronously; throws if it cannot be opened.
 */
export function syncFileStream(path: string, append = false): SyncFileStream {
  const fd = openSync(path, append ? 'a' : 'w');
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        for (let done = 0; done < chunk.length;) {
          const n = writeSync(fd, chunk, done, chunk.length - done);
          done += n;
          stream.written += n;
        }
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback();
    },
    final(callback) {
      try { closeSync(fd); } catch (err) { callback(err as Error); return; }
      callback();
    },
  }) as SyncFileStream;
  stream.written = 0;
  return stream;
}

/** A Writable whose `written` counts the bytes this process wrote to the file (a checkpoint records them). */
export type SyncFileStream = Writable & { written: number };
