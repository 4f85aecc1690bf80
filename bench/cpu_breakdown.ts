/**
 * Where a benchmark's CPU goes, by process role, from /proc: a snapshot of every process before
 * and after the measured phase. A process alive at the end counts for the CPU it used since the
 * first snapshot (all of it when it started after); a process that ended counts through its
 * parent's "children" times (cutime/cstime), which the kernel adds up when the parent reaps it,
 * so the short-lived ones (almighty's one-shot modules, bipbip runs, the jobs' shells) are
 * counted without being seen. What no process accounts for (kernel threads, interrupts,
 * children of parents gone or not reaping) is the machine's total minus the rest.
 *
 * Linux only; elsewhere the snapshots are empty and nothing is reported.
 */
import { isEntryName } from "../lib/permissions/mod.ts";

/** One process as /proc shows it; times in ms. */
export interface ProcSample {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
  /** Clock ticks since boot at which it started: a pid reused by another process differs. */
  start: number;
  /** user + system CPU of the process itself. */
  self: number;
  /** user + system CPU of its reaped descendants. */
  children: number;
}

/** USER_HZ, the unit of /proc's times, is 100 on Linux. */
const TICK_MS = 10;

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parseStat(text: string): Omit<ProcSample, "cmdline"> | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const f = text.slice(close + 2).trim().split(/\s+/).map(Number);
  // After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice threads itrealvalue starttime ...
  if (f.length < 20) return null;
  return {
    pid: Number(text.slice(0, open).trim()),
    ppid: f[1],
    comm: text.slice(open + 1, close),
    start: f[19],
    self: (f[11] + f[12]) * TICK_MS,
    children: (f[13] + f[14]) * TICK_MS,
  };
}

/** Every process readable now, by pid. */
export function snapshot(): Map<number, ProcSample> {
  const out = new Map<number, ProcSample>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = parseStat(Deno.readTextFileSync(`/proc/${e.name}/stat`));
      if (stat === null) continue;
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ")
        .trim();
      out.set(stat.pid, { ...stat, cmdline });
    } catch { /* gone meanwhile, or not ours to read */ }
  }
  return out;
}

/**
 * What a process is: our module or command (by its entry file, or its artifact's name under
 * OARDIR), PostgreSQL, the benchmark itself, or else its command name.
 */
export function roleOf(
  p: Pick<ProcSample, "pid" | "comm" | "cmdline">,
  benchPid: number,
): string {
  if (p.pid === benchPid) return "bench (submission, polling)";
  if (p.comm === "postgres" || p.comm === "postmaster") return "PostgreSQL";
  // The entry file (modules/x/main.ts, cli/x/main.ts) or the artifact (OARDIR/x) among the arguments.
  const entry = p.cmdline.split(" ").slice(1).filter((arg) => !arg.startsWith("-"))
    .map((arg) => /(?:^|\/)([\w-]+?)(?:\/main)?(?:\.ts|\.js)?$/.exec(arg)?.[1])
    .find((name) => name !== undefined && isEntryName(name));
  if (entry) return entry + (/\s--serve\b/.test(p.cmdline) ? " agent" : "");
  return p.comm;
}

/** The role under which a process's reaped descendants are counted. */
function childrenRole(role: string): string {
  if (role === "PostgreSQL") return role;
  if (role === "almighty") return "almighty's modules (meta_sched, node_change_state, ...)";
  if (role === "bipbip_commander") return "bipbip_commander's runs (bipbip, leon)";
  if (role === "oarexec agent") return "the jobs (user shells, under the oarexec agent)";
  return `${role}'s children`;
}

/** CPU ms by role between two snapshots, plus the machine's unaccounted rest when given. */
export function cpuByRole(
  before: ReadonlyMap<number, ProcSample>,
  after: ReadonlyMap<number, ProcSample>,
  benchPid: number,
  machineMs?: number,
): Map<string, number> {
  const out = new Map<string, number>();
  const add = (role: string, ms: number) => {
    if (ms > 0) out.set(role, (out.get(role) ?? 0) + ms);
  };
  for (const p of after.values()) {
    const b = before.get(p.pid);
    const same = b !== undefined && b.start === p.start;
    const role = roleOf(p, benchPid);
    add(role, p.self - (same ? b.self : 0));
    add(childrenRole(role), p.children - (same ? b.children : 0));
  }
  if (machineMs !== undefined) {
    let counted = 0;
    for (const ms of out.values()) counted += ms;
    add("unaccounted (kernel threads, interrupts, orphans)", machineMs - counted);
  }
  return out;
}

/** Report lines, costliest first, in ms per job. */
export function formatBreakdown(byRole: ReadonlyMap<string, number>, jobs: number): string[] {
  return [...byRole.entries()]
    .sort((a, b) => b[1] - a[1])
    .filter(([, ms]) => ms / jobs >= 0.05)
    .map(([role, ms]) => `    ${(ms / jobs).toFixed(2).padStart(6)} ms/job  ${role}`);
}
