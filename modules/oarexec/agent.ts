/**
 * The local oarexec agent (`oarexec --serve`): one resident oarexec that runs every job the local
 * launcher starts on this host, each exactly as a per-job oarexec would (lib/exec/run.ts),
 * so that a job costs a shell and not a Deno start-up (docs/architecture.md §9: ~60 ms
 * of CPU per oarexec process, the largest per-job cost of the local launcher).
 *
 * It listens on a unix socket in OAREXEC_DIRECTORY, takes one request per connection
 * (lib/protocol/mod.ts, AgentRequest), and leaves once it has held no job and no connection for its
 * idle time: it is started on demand by the launcher and never lingers after the work is done.
 * Like a detached oarexec it leads its own session, so jobs outlive bipbip and almighty.
 *
 * Each job keeps its pid file (holding the agent's pid): liveness checks and the ssh-era
 * signal scripts keep working, and a dead agent shows as dead oarexecs.
 */
import type { Account } from "../../lib/exec/passwd.ts";
import {
  encodeAgentExit,
  type OarexecDescriptor,
  parseAgentRequest,
} from "../../lib/protocol/mod.ts";
import { decodeDescriptor } from "./descriptor_input.ts";
import { OarexecLog } from "../../lib/exec/log.ts";
import { type Handled, runOarexec } from "../../lib/exec/run.ts";
import { PID_FILE_PREFIX, userSignalFilePath } from "../../lib/exec/job_files.ts";
import { RecycledFiles, sweepSpares } from "./recycled_files.ts";

/** A request is read within this (the reference's descriptor transfer limit). */
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_REQUEST_BYTES = 256 * 64 * 1024 + 64;

export interface AgentOptions {
  socketPath: string;
  /** Leave after this long with no job and no connection. */
  idleMs: number;
  /** SSH_RENDEZ_VOUS. */
  rendezvous: string;
  /** Called once the socket listens (the starter waits for it). */
  onReady?: () => void;
  /** Why an account may not run a job here (lib/exec/run.ts RunOptions.refuseAccount). */
  refuseAccount: (account: Account) => string | null;
  /** The agent's own log (the jobs have theirs). */
  log?: (msg: string) => void;
}

/*
 * Leaving never closes the listener: Deno unlinks a unix socket's path when its listener closes,
 * and by then the path may be a newer agent's (see `leave`). The process exits instead
 * (oarexec's entry does, once serveAgent returns), which leaves the path alone.
 */

interface HeldJob {
  handlers: Record<Handled, () => void>;
  descriptor: OarexecDescriptor;
}

/**
 * 0 when it served and left (the caller then exits: see above), or when another agent already
 * serves the socket.
 */
export async function serveAgent(opts: AgentOptions): Promise<number> {
  const log = opts.log ?? (() => {});
  const bound = await bindUnique(opts.socketPath);
  if (bound === "taken") {
    log(`another agent serves ${opts.socketPath}`);
    opts.onReady?.();
    return 0;
  }
  const { listener, ino } = bound;
  opts.onReady?.();
  log(`serving on ${opts.socketPath}`);

  const jobs = new Map<number, HeldJob>();
  const files = new JobFileRecyclers();
  let busy = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let leaving = false;
  let left!: () => void;
  const done = new Promise<void>((r) => (left = r));
  const armIdle = () => {
    clearTimeout(idleTimer);
    if (busy === 0) idleTimer = setTimeout(leave, opts.idleMs);
  };
  const hold = () => {
    busy++;
    clearTimeout(idleTimer);
  };
  const release = () => {
    busy--;
    armIdle();
  };
  function leave() {
    if (busy > 0 || leaving) return;
    leaving = true;
    // The name goes first, so a new client starts a new agent instead of knocking here; a
    // connection that came in just before is still taken during the grace below.
    removeIfOurs(opts.socketPath, ino);
    setTimeout(() => {
      if (busy === 0) left();
      else leaving = false; // work arrived during the grace: serve it, leave later
    }, 100);
  }

  armIdle();
  (async () => {
    try {
      for await (const conn of listener) {
        hold();
        serveConnection(conn, jobs, files, opts, log).finally(release);
      }
    } catch (e) {
      log(`accept failed: ${e}`);
    }
    // Nothing can come in any more: leave once the jobs are done.
    removeIfOurs(opts.socketPath, ino);
    leaving = false;
    armIdle();
  })();
  await done;
  files.clear();
  log("idle: leaving");
  return 0;
}

/** Binds the socket, replacing a stale one; "taken" when a live agent answers there. */
async function bindUnique(
  path: string,
): Promise<{ listener: Deno.UnixListener; ino: number | null } | "taken"> {
  for (let attempt = 0;; attempt++) {
    try {
      const listener = Deno.listen({ transport: "unix", path });
      // Whoever can connect can run a job as anyone: only the agent's own user may (root, or
      // the account the server launches as), whatever the umask made of the socket.
      Deno.chmodSync(path, 0o600);
      return { listener, ino: inodeOf(path) };
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse) || attempt > 0) throw e;
    }
    try {
      const c = await Deno.connect({ transport: "unix", path });
      c.close();
      return "taken";
    } catch {
      // Nobody listens: a previous agent died without cleaning up.
      await Deno.remove(path).catch(() => {});
    }
  }
}

function inodeOf(path: string): number | null {
  try {
    return Deno.statSync(path).ino;
  } catch {
    return null;
  }
}

/** Another agent may have replaced the socket since (a race of two starters): leave it. */
function removeIfOurs(path: string, ino: number | null) {
  if (ino !== null && inodeOf(path) === ino) {
    try {
      Deno.removeSync(path);
    } catch { /* gone */ }
  }
}

async function readRequest(conn: Deno.Conn): Promise<Uint8Array | string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buf = new Uint8Array(64 * 1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), REQUEST_TIMEOUT_MS)));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf), timeout]);
      if (n === "timeout") return "request timed out";
      if (n === null) break;
      size += n;
      if (size > MAX_REQUEST_BYTES) return "request too large";
      chunks.push(buf.slice(0, n));
    }
  } catch (e) {
    return `cannot read the request: ${e}`;
  } finally {
    clearTimeout(timer);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.byteLength) n += await conn.write(bytes.subarray(n));
}

function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch { /* closed */ }
}

async function serveConnection(
  conn: Deno.Conn,
  jobs: Map<number, HeldJob>,
  files: JobFileRecyclers,
  opts: AgentOptions,
  log: (msg: string) => void,
): Promise<void> {
  const bytes = await readRequest(conn);
  if (typeof bytes === "string") {
    log(bytes);
    await writeAll(conn, `ERROR ${bytes}\n`).catch(() => {});
    return closeQuietly(conn);
  }
  // The head is ASCII; the descriptor after it is decoded (and checked) on its own.
  const nl = bytes.indexOf(10);
  const head = new TextDecoder().decode(nl < 0 ? bytes : bytes.subarray(0, nl + 1));
  const req = parseAgentRequest(head);
  if (!req.ok) {
    log(req.error);
    await writeAll(conn, `ERROR ${req.error}\n`).catch(() => {});
    return closeQuietly(conn);
  }
  switch (req.value.op) {
    case "JOBS":
      await writeAll(conn, [...jobs.keys()].join(" ") + "\n").catch(() => {});
      return closeQuietly(conn);
    case "SIGNAL": {
      const { jobId, signal, userSignal } = req.value;
      const answer = signalJob(jobs.get(jobId), jobId, signal, userSignal);
      await writeAll(conn, answer + "\n").catch(() => {});
      return closeQuietly(conn);
    }
    case "RUN":
      return await runJob(
        conn,
        nl < 0 ? new Uint8Array() : bytes.subarray(nl + 1),
        jobs,
        files,
        opts,
      );
  }
}

/** One recycler per job directory (descriptors name theirs; in practice there is one). */
class JobFileRecyclers {
  readonly #byDir = new Map<string, RecycledFiles>();

  for(tmp: string): RecycledFiles {
    let r = this.#byDir.get(tmp);
    if (!r) {
      sweepSpares(tmp, processExists);
      sweepStalePidFiles(tmp, processExists);
      r = new RecycledFiles(tmp);
      this.#byDir.set(tmp, r);
    }
    return r;
  }

  clear(): void {
    for (const r of this.#byDir.values()) r.clear();
  }
}

/**
 * Removes the job pid files that name no live process (issue 22): their oarexec (an agent like
 * this one, or a per-job oarexec) was killed between its report's acknowledgement and the
 * file's removal, or its job ended without it (sarko's check then said "gone", as it does for
 * no file). Nobody else would remove them. Run once per job directory and agent: a readdir. No
 * live process writes a dead oarexec's job's file (job ids are not reused).
 */
export function sweepStalePidFiles(tmp: string, isAlive: (pid: number) => boolean): number {
  let removed = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmp)];
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.startsWith(PID_FILE_PREFIX)) continue;
    if (!/^\d+$/.test(e.name.slice(PID_FILE_PREFIX.length))) continue;
    const path = `${tmp}/${e.name}`;
    let text: string;
    try {
      text = Deno.readTextFileSync(path).trim();
    } catch {
      continue;
    }
    // A file being written (empty for an instant) is left alone.
    if (!/^\d+$/.test(text) || isAlive(Number(text))) continue;
    try {
      Deno.removeSync(path);
      removed++;
    } catch { /* removed meanwhile, or not ours */ }
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

const SIGNAL_HANDLERS: Readonly<Record<string, Handled>> = {
  TERM: "SIGTERM",
  INT: "SIGINT",
  QUIT: "SIGQUIT",
  USR2: "SIGUSR2",
  URG: "SIGURG",
  TSTP: "SIGTSTP",
  CONT: "SIGCONT",
};

/** What `signal_oarexec` does to a per-job oarexec: CONT, then the signal. */
function signalJob(
  job: HeldJob | undefined,
  jobId: number,
  signal: string,
  userSignal?: string,
): string {
  if (!job) return `ERROR job ${jobId} is not running here`;
  const handler = SIGNAL_HANDLERS[signal.replace(/^SIG/, "")];
  if (!handler) return `ERROR signal ${signal} is not one oarexec handles`;
  if (userSignal !== undefined) {
    try {
      Deno.writeTextFileSync(
        userSignalFilePath(job.descriptor.tmp_directory, jobId),
        `${userSignal}\n`,
      );
    } catch (e) {
      return `ERROR cannot write the user signal file: ${e}`;
    }
  }
  job.handlers.SIGCONT();
  if (handler !== "SIGCONT") job.handlers[handler]();
  return "OK";
}

async function runJob(
  conn: Deno.Conn,
  descriptorBytes: Uint8Array,
  jobs: Map<number, HeldJob>,
  files: JobFileRecyclers,
  opts: AgentOptions,
): Promise<void> {
  const read = decodeDescriptor(descriptorBytes);
  if (!read.ok) {
    await writeAll(conn, `${read.error}\n${encodeAgentExit(read.code)}`).catch(() => {});
    return closeQuietly(conn);
  }
  const d = read.descriptor;
  // Until the rendezvous the job's log lines go to the launcher, in order; then nowhere.
  let open = true;
  let chain = Promise.resolve();
  const decoder = new TextDecoder();
  const send = (text: string) => {
    chain = chain.then(() => (open ? writeAll(conn, text) : undefined)).catch(() => {
      open = false;
    });
    return chain;
  };
  const log = new OarexecLog(d.job_id, (line) => void send(decoder.decode(line)));
  let met = false;
  if (jobs.has(d.job_id)) {
    log.info(`job ${d.job_id} is already running here`);
    await send(encodeAgentExit(31));
    return closeQuietly(conn);
  }
  const code = await runOarexec(d, {
    refuseAccount: opts.refuseAccount,
    log,
    rendezvous: async () => {
      await send(opts.rendezvous + "\n");
      if (!open) {
        // The launcher left before the rendezvous (its deadline passed): the job must not
        // start behind its back.
        jobs.get(d.job_id)?.handlers.SIGTERM();
        return;
      }
      met = true;
      open = false;
      closeQuietly(conn);
    },
    detach: () => {},
    files: files.for(d.tmp_directory),
    signals: (handlers) => {
      jobs.set(d.job_id, { handlers, descriptor: d });
      return () => jobs.delete(d.job_id);
    },
  });
  if (!met) {
    await send(encodeAgentExit(code));
    open = false;
    closeQuietly(conn);
  }
}
