/**
 * The stage's spool directory, `$TMPDIR/pystage-PID-XXXXXX`: named after the process that owns it,
 * so a later stage can tell a directory whose owner is gone (ended by SIGKILL, an out-of-memory
 * abort, a second signal: nothing ran to remove it) and remove it.
 */
import { lstatSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ownedName = /^pystage-(\d+)-[A-Za-z0-9]{6}$/;

/** Create this process's spool directory (0700) and return its real path. */
export function createSpoolDir(): string {
  // The real path: the server names its output files by real path, and a temp dir may be a symlink (macOS).
  return realpathSync(mkdtempSync(join(tmpdir(), `pystage-${process.pid}-`)));
}

/**
 * Remove spool directories in $TMPDIR left by pystage processes that no longer run. Only directories
 * of this user whose name carries a pid; a pid that runs again (reused) keeps its directory, to be safe.
 */
export function removeOrphanedSpoolDirs(): string[] {
  const dir = tmpdir();
  const removed: string[] = [];
  let names: string[];
  try { names = readdirSync(dir); } catch { return removed; }
  for (const name of names) {
    const match = ownedName.exec(name);
    if (!match || processRuns(Number(match[1]))) continue;
    const path = join(dir, name);
    try {
      const stat = lstatSync(path);
      if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
