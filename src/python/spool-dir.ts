/**
 * The stage's spool directory, `$TMPDIR/pystage-PID-XXXXXX`, and the removal of those left by stages that
 * are gone (ended by SIGKILL, an out-of-memory abort, a second signal: nothing ran to remove them).
 *
 * Liveness is a lock, not a PID: two containers sharing TMPDIR see different PIDs, so a PID says nothing
 * about a stage in another namespace. Each stage holds a shared flock on `.lock` inside its directory for
 * as long as it runs, through a `flock(1)` helper whose command reads the stage's end of a pipe: when the
 * stage ends, however (SIGKILL too), the pipe closes, the helper exits and the kernel releases the lock.
 * Another stage removes a directory only if it can take that lock itself. Directories without a lock file
 * (older stages, or a system without flock(1)) fall back to the PID check.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ownedName = /^pystage-(\d+)-[A-Za-z0-9]{6}$/;
export const LOCK_FILE = '.lock';
/** A lock file younger than this may belong to a stage that has not taken its lock yet. */
const LOCK_GRACE_MS = 10_000;

/** A stage's spool directory and the helper that holds its lock. */
export interface SpoolDir {
  path: string;
  /** Let the lock go (the directory is being removed); resolves once its helper has exited. */
  release(): Promise<void>;
}

/** Create this process's spool directory (0700), take its lock, and return its real path. */
export function createSpoolDir(): SpoolDir {
  // The real path: the server names its output files by real path, and a temp dir may be a symlink (macOS).
  const path = realpathSync(mkdtempSync(join(tmpdir(), `pystage-${process.pid}-`)));
  const lock = join(path, LOCK_FILE);
  writeFileSync(lock, '', { mode: 0o600 });
  let holder: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  try {
    // --close: only flock itself holds the lock, not the `cat` it runs; cat ends at the pipe's EOF.
    holder = spawn('flock', ['--shared', '--close', lock, 'cat'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const child = holder;
    exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      // No flock(1): the PID in the name is all a cleaner has.
      child.once('error', () => resolve());
    });
    holder.unref();
    (holder.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  } catch {
    holder = null;
  }
  return {
    path,
    release: () => {
      // Waited on: the helper must count as work again, or a process with nothing else to do would end first.
      holder?.ref();
      holder?.stdin?.end();
      return exited;
    },
  };
}

/**
 * Remove spool directories in $TMPDIR left by pystage processes that no longer run. Only directories of
 * this user whose name carries a pid; with a lock file, only when its lock is free; without one, only
 * when no process has that pid (a reused pid keeps its directory, to be safe).
 */
export function removeOrphanedSpoolDirs(): string[] {
  const dir = tmpdir();
  const removed: string[] = [];
  let names: string[];
  try { names = readdirSync(dir); } catch { return removed; }
  for (const name of names) {
    const match = ownedName.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    try {
      const stat = lstatSync(path);
      if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) continue;
      if (!isOrphan(path, Number(match[1]))) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}

/** True when no stage holds the directory: its lock can be taken, or, without a lock file, its pid is gone. */
function isOrphan(path: string, pid: number): boolean {
  const lock = join(path, LOCK_FILE);
  let lockAge: number;
  try {
    lockAge = Date.now() - statSync(lock).mtimeMs;
  } catch {
    return !processRuns(pid);
  }
  if (lockAge < LOCK_GRACE_MS) return false;
  // Exclusive and non-blocking: exit 0 when nobody holds it (and it is let go at once), 1 when a stage does.
  const probe = spawnSync('flock', ['--exclusive', '--nonblock', lock, 'true'], { stdio: 'ignore', timeout: 5000 });
  if (probe.error) return !processRuns(pid);
  return probe.status === 0;
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
