/**
 * Reaching a whole process tree: the user command and the node scripts each lead their own
 * session (started through `setsid`), so their process group id and session id are their pid.
 * A process that moved to another group of the same session is still found through /proc.
 */

/** Pids whose session is `sid` (from /proc/<pid>/stat), excluding none. */
export function sessionMembers(sid: number): number[] {
  const pids: number[] = [];
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        // The command name (2nd field) is in parentheses and may hold spaces: count after it.
        const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (Number(rest[3]) === sid) pids.push(Number(e.name));
      } catch { /* the process ended meanwhile */ }
    }
  } catch { /* no /proc: the process group is all we can reach */ }
  return pids;
}

/** Sends `signal` to the process group `sid` and to every other member of session `sid`. */
export function killSession(sid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-sid, signal);
  } catch { /* no such group any more */ }
  for (const pid of sessionMembers(sid)) {
    try {
      Deno.kill(pid, signal);
    } catch { /* gone */ }
  }
}
