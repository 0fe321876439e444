/**
 * The one way pystage kills a Python server: SIGKILL to its whole process group.
 *
 * Every server is spawned detached, so it leads a process group of its own, and whatever a model
 * starts (a `sleep 1000` in `__init__`, a helper process) is in that group unless it made a new
 * session itself. Killing only the pid would leave those children to init.
 */

/**
 * SIGKILL every process in the group `pid` leads. Safe to call when the leader already exited: its
 * group lives on while any member does (the pid cannot be reused meanwhile), and an empty group is
 * a no-op. The bare pid is never signalled, so a stale pid cannot hit an unrelated process that is
 * not a group leader.
 */
export function killProcessGroup(pid: number | null | undefined): void {
  if (pid === null || pid === undefined || pid <= 1) return;
  try { process.kill(-pid, 'SIGKILL'); } catch { /* the group is empty: nothing left to stop */ }
}
