/**
 * Per-process facts read from /proc (Linux): parent, command name, CPU ticks, peak RSS.
 * Used instead of /usr/bin/time so the harness needs nothing but Node and Python.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc CPU fields (USER_HZ, 100 on every mainstream Linux build). */
const TICKS_PER_SECOND = 100;

/** What /proc/<pid>/stat says about one process. */
export interface ProcStat {
  pid: number;
  comm: string;
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
    ppid: Number(fields[1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
    reapedChildrenCpuSeconds: (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND,
  };
}

/** Peak resident set size (VmHWM) of a process in KiB, or null if it is gone. */
export function peakRssKb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
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
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= root) continue;
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
