/** Temporary directories for one test file, all removed when its tests are over. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const made: string[] = [];
// Registered when a test file first imports this module: runs once that file's tests are done.
after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

/** A new directory in the system's temporary directory, named `prefix` plus six random characters. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
