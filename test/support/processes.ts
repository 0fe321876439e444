/**
 * The process table as Linux's /proc shows it: one reader shared by the tests (is a pid alive, which
 * processes run a command) and the bench harness (CPU seconds, peak RSS, the tree under a pid).
 * Reading /proc directly keeps both free of /usr/bin/time and ps.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc CPU fields (USER_HZ, 100 on every mainstream Linux build). */
const TICKS_PER_SECOND = 100;

/** What /proc/<pid>/stat says about one process. */
export interface ProcStat {
  pid: number;
  comm: string;
  /** One letter: R running, S sleeping, Z zombie, X dead, … (proc(5)). */
  state: string;
  ppid: number;
  /** utime + stime of the process itself (all its threads), in seconds. */
  cpuSeconds: number;
  /** cutime + cstime: CPU of its children that it has already reaped, in seconds. */
  reapedChildrenCpuSeconds: number;
}

/** Parse /proc/<pid>/stat, or null if the process is gone. */
export function readStat(pid: number | 'self'): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is parenthesised and may contain spaces: split after the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state) of proc(5), so field N is fields[N - 3].
  return {
    pid: Number(text.slice(0, text.indexOf(' '))),
    comm: text.slice(text.indexOf('(') + 1, close),
    state: fields[0]!,
    ppid: Number(fields[1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
    reapedChildrenCpuSeconds: (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND,
  };
}

/** True if the pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const state = readStat(pid)?.state;
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Resolves true once every pid is gone, false if some are still alive after `ms`. */
export async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pids.every((pid) => !isAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return pids.every((pid) => !isAlive(pid));
}

/** Pids of running processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const pid of pidsAbove(0)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && isAlive(pid)) pids.push(pid);
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

/** Peak resident set size (VmHWM) of a process in KiB, or null if it is gone. */
export function peakRssKb(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Every live descendant of `root`. Only pids above the root's are looked at: descendants are
 * started after it (a pid wrap-around during one run is the accepted exception), and skipping
 * the rest keeps each scan cheap on a busy 2-core machine.
 */
export function descendantsOf(root: number): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const pid of pidsAbove(root)) {
    const stat = readStat(pid);
    if (stat === null) continue;
    const siblings = byParent.get(stat.ppid);
    if (siblings) siblings.push(stat);
    else byParent.set(stat.ppid, [stat]);
  }
  const found: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** CPU seconds of every child this process has reaped so far (with their own reaped descendants). */
export function reapedChildrenCpuSeconds(): number {
  return readStat('self')!.reapedChildrenCpuSeconds;
}

/** The numeric entries of /proc above `floor` (an empty list where /proc cannot be read). */
function pidsAbove(floor: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries.map(Number).filter((pid) => Number.isInteger(pid) && pid > floor);
}
