/**
 * The interactive sessions of a job, as its head node sees them: the reference's oarsub file
 * (`<OAREXEC_DIRECTORY>/oarsub_connections_<job_id>`), where each session's shell records
 * itself, and which the INTERACTIVE oarexec watches to know when the job is over.
 *
 * Lines, written by the session wrapper (cli/oarsub/shell.ts) as the job's user:
 *   START <anchor> <wrapper>     the `oarsub -I` session began (the job's own session)
 *   CONNECT <anchor> <wrapper>   an `oarsub -C` session began
 *   END <wrapper> <status>       that session's shell exited with `status`
 * `anchor` is the wrapper's parent: oarsub itself with the local launcher, the sshd session
 * process under ssh. It lives as long as the user's oarsub (or connection) does, which is what
 * the reference could not see: its oarexec waited for oarsub's USR1, which never came when
 * oarsub died, and the job ran to its walltime.
 *
 * The file is the user's to write, so nothing in it is trusted: a pid counts only while it
 * belongs to the job's user and is the process first seen under that number.
 */
import { join } from "node:path";

/** The reference's OARSUB_FILE_NAME_PREFIX default. */
export const SESSION_FILE_PREFIX = "oarsub_connections_";

export function sessionFilePath(tmp: string, jobId: number): string {
  return join(tmp, `${SESSION_FILE_PREFIX}${jobId}`);
}

export type SessionLine =
  | { op: "START" | "CONNECT"; anchor: number; wrapper: number }
  | { op: "END"; wrapper: number; status: number };

const PID = /^[1-9]\d{0,9}$/;

/** The well-formed lines of the file, in order; anything else is skipped. */
export function parseSessionLines(text: string): SessionLine[] {
  const out: SessionLine[] = [];
  for (const raw of text.split("\n")) {
    const f = raw.trim().split(/\s+/);
    if ((f[0] === "START" || f[0] === "CONNECT") && f.length === 3) {
      if (PID.test(f[1]) && PID.test(f[2])) {
        out.push({ op: f[0], anchor: Number(f[1]), wrapper: Number(f[2]) });
      }
    } else if (f[0] === "END" && f.length === 3 && PID.test(f[1]) && /^\d{1,3}$/.test(f[2])) {
      out.push({ op: "END", wrapper: Number(f[1]), status: Number(f[2]) });
    }
  }
  return out;
}

/** What the system says of a process: its real uid, start time (to tell reused pids apart). */
export interface ProcInfo {
  uid: number;
  start: string;
  ppid: number;
}

/** Every process at one moment. */
export type ProcTable = Map<number, ProcInfo>;

/** Parses `ps -e -o pid=,ppid=,ruid=,stat=,lstart=`; zombies are left out (they run nothing). */
export function parsePs(output: string): ProcTable {
  const table: ProcTable = new Map();
  for (const line of output.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d+$/.test(f[0]) || f[3].startsWith("Z")) continue;
    table.set(Number(f[0]), { ppid: Number(f[1]), uid: Number(f[2]), start: f.slice(4).join(" ") });
  }
  return table;
}

/**
 * The process table through `ps`: Deno grants reading another process's /proc entries only with
 * every permission, which oarexec does not hold. null when ps cannot be run.
 */
export function psTable(): ProcTable | null {
  try {
    const out = new Deno.Command("ps", {
      args: ["-e", "-o", "pid=,ppid=,ruid=,stat=,lstart="],
      env: { LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return out.success ? parsePs(new TextDecoder().decode(out.stdout)) : null;
  } catch {
    return null;
  }
}

/** `pid` and all its descendants, parents before children. */
export function processTree(pid: number, table: ProcTable): number[] {
  const children = new Map<number, number[]>();
  for (const [p, info] of table) {
    const list = children.get(info.ppid) ?? [];
    list.push(p);
    children.set(info.ppid, list);
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.shift()!;
    if (out.includes(p)) continue;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

export type SessionState =
  /** No `oarsub -I` session has begun yet. */
  | { state: "waiting" }
  | { state: "active" }
  /** The session's shell exited and said so. */
  | { state: "ended"; status: number }
  /** The session is gone without its shell saying it exited: oarsub or its connection died. */
  | { state: "lost"; reason: string };

interface Tracked {
  op: "START" | "CONNECT";
  anchor: number;
  wrapper: number;
  anchorStart: string | null;
  wrapperStart: string | null;
}

/**
 * Follows the file's sessions between polls. `uid` is the job user's: processes of anyone
 * else are never watched nor killed.
 */
export class SessionWatch {
  readonly #tracked = new Map<number, Tracked>();
  #main: Tracked | null = null;

  /** The last process table read, for `killSessions`. */
  table: ProcTable = new Map();

  constructor(
    readonly uid: number,
    readonly readTable: () => ProcTable | null = psTable,
  ) {}

  /** The process, if it is the user's and the one first seen under that pid. */
  #alive(pid: number, start: string | null): boolean {
    const info = this.table.get(pid);
    return info !== undefined && info.uid === this.uid && (start === null || info.start === start);
  }

  /** Registers the sessions of `lines` not seen before (their processes as they are now). */
  #track(lines: SessionLine[]): void {
    for (const l of lines) {
      if (l.op === "END" || this.#tracked.has(l.wrapper)) continue;
      const a = this.table.get(l.anchor);
      const w = this.table.get(l.wrapper);
      const t: Tracked = {
        // Only the first START is the job's own session; a second one is a connection.
        op: l.op === "START" && this.#main === null ? "START" : "CONNECT",
        anchor: l.anchor,
        wrapper: l.wrapper,
        anchorStart: a && a.uid === this.uid ? a.start : "gone",
        wrapperStart: w && w.uid === this.uid ? w.start : "gone",
      };
      this.#tracked.set(l.wrapper, t);
      if (t.op === "START") this.#main = t;
    }
  }

  /**
   * One poll. `read` returns the file's text; it is read before the processes are probed and
   * again after, so that a shell that wrote END and exited in between counts as ended.
   */
  poll(read: () => string): SessionState {
    const first = parseSessionLines(read());
    const table = this.readTable();
    // Without a process table only what the shells wrote can be told (no death is seen).
    if (table === null) return endOnly(first);
    this.table = table;
    this.#track(first);
    const main = this.#main;
    if (!main) return { state: "waiting" };
    const anchorAlive = this.#alive(main.anchor, main.anchorStart);
    const wrapperAlive = this.#alive(main.wrapper, main.wrapperStart);
    const lines = parseSessionLines(read());
    this.#track(lines);
    const end = lines.find((l) => l.op === "END" && l.wrapper === main.wrapper);
    if (end && end.op === "END") return { state: "ended", status: end.status };
    if (!anchorAlive) return { state: "lost", reason: "the interactive oarsub is gone" };
    if (!wrapperAlive) return { state: "lost", reason: "the interactive shell was killed" };
    return { state: "active" };
  }

  /** Wrappers of sessions still running (the job's end ends them). */
  liveWrappers(): number[] {
    this.table = this.readTable() ?? this.table;
    return [...this.#tracked.values()]
      .filter((t) => this.#alive(t.wrapper, t.wrapperStart))
      .map((t) => t.wrapper);
  }
}

function endOnly(lines: SessionLine[]): SessionState {
  const start = lines.find((l) => l.op === "START");
  if (!start || start.op !== "START") return { state: "waiting" };
  const end = lines.find((l) => l.op === "END" && l.wrapper === start.wrapper);
  return end && end.op === "END" ? { state: "ended", status: end.status } : { state: "active" };
}

/** Kills each live session with its whole process tree (the user's processes only). */
export function killSessions(watch: SessionWatch): number {
  let n = 0;
  for (const w of watch.liveWrappers()) {
    for (const pid of processTree(w, watch.table)) {
      const info = watch.table.get(pid);
      if (!info || info.uid !== watch.uid) continue;
      try {
        Deno.kill(pid, "SIGKILL");
        n++;
      } catch { /* gone */ }
    }
  }
  return n;
}

/**
 * At the end of a job that is not interactive (PASSIVE): its `oarsub -C` sessions end with it,
 * as OAR ends them with the job's cpuset. Nothing to do, and no process table to read, when no
 * session ever recorded itself in `file`. Returns how many processes were killed.
 */
export function endConnections(file: string, uid: number): number {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    return 0;
  }
  const watch = new SessionWatch(uid);
  watch.poll(() => text);
  const n = killSessions(watch);
  try {
    Deno.removeSync(file);
  } catch { /* gone */ }
  return n;
}
