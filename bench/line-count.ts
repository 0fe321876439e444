/** Counting and spot-checking the output files runners wrote. */
import { closeSync, openSync, readSync } from 'node:fs';

/** Number of newline-terminated lines in a file, read in 1 MiB chunks. */
export function countLines(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) {
      for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

/** The first line of a file (at most 64 KiB of it), or '' for an empty file. */
export function firstLine(path: string): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(64 * 1024);
  try {
    const n = readSync(fd, buf);
    const text = buf.subarray(0, n).toString('utf8');
    const nl = text.indexOf('\n');
    return nl === -1 ? text : text.slice(0, nl);
  } finally {
    closeSync(fd);
  }
}
