/**
 * Big messages travel through files in the stage's spool directory instead of
 * frames: the worker writes inputs over the inline limit, the server writes
 * outputs over it, and whoever reads a file deletes it.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync, writeFileSync } from 'node:fs';
import { SpoolWriteError } from '../../src/api/errors.js';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** The spool directory of one partition worker. */
export class SpoolFiles {
  /** Output files being read: a sweep must leave them to takeOutput. */
  private readonly taking = new Set<string>();

  constructor(private readonly dir: string, private readonly partition: number) {}

  /**
   * Write one message's JSON text to a fresh 0600 file and return its path.
   * Synchronous on purpose: the request must be queued in the same turn as its
   * neighbours, or a big message could overtake the ones before it.
   */
  writeInput(json: Uint8Array, model: string): string {
    const path = join(this.dir, `in-p${this.partition}-${randomBytes(8).toString('hex')}.json`);
    try {
      writeFileSync(path, json, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // What was written of it (a full disk stops a write midway) would take room from every later file.
      try { unlinkSync(path); } catch { /* never created */ }
      throw new SpoolWriteError(
        `this ${json.length}-byte message (over the inline limit) could not be written to the spool directory ${this.dir}: ${(err as Error).message}; free space there, or point TMPDIR elsewhere`,
        { partition: this.partition, model, type: (err as NodeJS.ErrnoException).code ?? 'SpoolWrite' },
      );
    }
    return path;
  }

  /**
   * Read a file the server wrote (an OutputFile) and delete it. The file is claimed in the same turn as
   * the call, so a sweep that starts later never removes it: call it as soon as the reply is read.
   */
  async takeOutput(path: string): Promise<Buffer> {
    if (!path.startsWith(this.dir + sep)) throw new Error(`server named an output file outside the spool directory: ${path}`);
    this.taking.add(path);
    try {
      return await readFile(path);
    } finally {
      await this.remove(path);
      this.taking.delete(path);
    }
  }

  /**
   * Delete the output files a server wrote for replies that never arrived (it names them `out-PID-…`).
   * Call once the server exited and its connection is closed, so every reply it did send was read.
   */
  async removeOutputsOf(pid: number | null): Promise<void> {
    if (pid === null) return;
    const prefix = `out-${pid}-`;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(names.filter((name) => name.startsWith(prefix))
      .map((name) => join(this.dir, name))
      .filter((path) => !this.taking.has(path))
      .map((path) => this.remove(path)));
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch(() => {});
  }
}
