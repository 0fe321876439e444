/**
 * Big messages travel through files in the stage's spool directory instead of
 * frames: the worker writes inputs over the inline limit, the server writes
 * outputs over it, and whoever reads a file deletes it.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** The spool directory of one partition worker. */
export class SpoolFiles {
  constructor(private readonly dir: string, private readonly partition: number) {}

  /**
   * Write one message's JSON text to a fresh 0600 file and return its path.
   * Synchronous on purpose: the request must be queued in the same turn as its
   * neighbours, or a big message could overtake the ones before it.
   */
  writeInput(json: Uint8Array): string {
    const path = join(this.dir, `in-p${this.partition}-${randomBytes(8).toString('hex')}.json`);
    writeFileSync(path, json, { mode: 0o600, flag: 'wx' });
    return path;
  }

  /** Read a file the server wrote (an OutputFile) and delete it. */
  async takeOutput(path: string): Promise<Buffer> {
    if (!path.startsWith(this.dir + sep)) throw new Error(`server named an output file outside the spool directory: ${path}`);
    try {
      return await readFile(path);
    } finally {
      await this.remove(path);
    }
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch(() => {});
  }
}
