/**
 * bipbip_commander's queue (docs/modules.md §3, docs/differences.md §9): runs `bipbip <id> ...` or
 * `leon <id>` for each message, at most `max` children at once and one at a time per job; a message
 * for a job whose child still runs waits its turn (duplicates are kept, in order, not dropped); a
 * child over its time limit is killed and logged; finished children are reaped as soon as they
 * exit.
 *
 * With a worker spawner (docs/architecture.md §9), bipbip invocations do
 * not cost a process each: one `bipbip --stdin` is kept started and idle (a standby, so that
 * its start-up is off the critical path), takes every bipbip invocation that comes during its
 * batch window on its input, reports each one's end on its output, and exits once its input is
 * closed and its work done; a new standby is started as soon as one is put to work. The rules
 * stay: one invocation at a time per job (a job is busy until its own end is reported), at most
 * `max` working children (the idle standby does not count: it does nothing).
 *
 * Acknowledged reports (issue 11): a message the appendice proxy tagged with an `ack` token is
 * acknowledged (`acknowledge(token)`, which reaches the proxy and then oarexec) once its bipbip
 * invocation was reported done with 0 (handled) or 1 (nothing to do: the job had ended already,
 * a duplicate) — never when it crashed, was killed, timed out, or its worker died before
 * reporting it: then the report is rejected (`reject(token)`, issue 22), the proxy closes its
 * connection and oarexec sends it again after its short back-off (the database may have been
 * down: the next try finds it back).
 *
 * Lost launches (issue 22): a launch (`bipbip <id>`) that died before it reported (its worker
 * died, it was killed or timed out; not one that exited 2, a failure bipbip dealt with) is
 * followed at once by `bipbip <id> --lost-launch`, which
 * launches the job if it is still toLaunch and ends it if it is left in Launching — rather than
 * leaving it to sarko's stuck-job limit (over a minute).
 */
import type { Logger } from "../../lib/runtime/log.ts";
import { exitCodeOf } from "../../lib/runtime/signals.ts";
import {
  commanderInvocation,
  type CommanderMessage,
  encodeAckLine,
  encodeNackLine,
  isLaunchMessage,
  lostLaunchMessage,
} from "../../lib/protocol/mod.ts";

export interface ChildHandle {
  /** Resolves with the exit code (128+n for a signal) once the child is reaped. */
  readonly exited: Promise<number>;
  kill(signal: Deno.Signal): void;
}

export type Spawner = (module: "bipbip" | "leon", args: string[]) => ChildHandle;

/** A child that takes bipbip invocations one by one on its input (`bipbip --stdin`). */
export interface WorkerHandle extends ChildHandle {
  /** Hands one invocation over; false when the child no longer takes any. */
  send(args: string[]): boolean;
  /** No more work: the child exits once what it has is done. */
  close(): void;
  /** Called each time the child reports an invocation done. */
  onDone(cb: (jobId: number, code: number) => void): void;
}

export type WorkerSpawner = () => WorkerHandle;

const BATCH_WINDOW_MS = 5000;
const BATCH_MAX = 2000;

export interface CommanderOptions {
  max: number;
  childTimeoutMs: number;
  spawn: Spawner;
  /** When given, bipbip invocations go to batch workers (see above). */
  worker?: WorkerSpawner;
  /**
   * How long a worker takes new invocations once it got its first (default 5000 ms). Each new
   * worker costs a process start, two new database connections (cold backends, statements
   * prepared again) and cold code: on a stream of jobs, 1 s windows cost ~2.5 ms of machine CPU
   * per job more than 5 s ones (bench:e2e, 32×8). What a worker holds at a time does not grow
   * with it: invocations are handled as they come.
   */
  batchWindowMs?: number;
  /** Most invocations one worker takes (default 2000). */
  batchMax?: number;
  /** Sends a handled report's acknowledgement back to the appendice proxy. */
  acknowledge?: (token: string) => void;
  /** Tells the appendice proxy a report was not handled (its oarexec is to send it again). */
  reject?: (token: string) => void;
  log?: Logger;
}

interface Worker {
  handle: WorkerHandle;
  /** Invocations handed over so far. */
  taken: number;
  /** Still taking invocations. */
  open: boolean;
  /** Counted among the working children (it was put to work). */
  working: boolean;
  /** Jobs whose invocation it has and did not report done yet. */
  jobs: Set<number>;
}

export interface CommanderStats {
  started: number;
  finished: number;
  killed: number;
  failedToStart: number;
  acknowledged: number;
  rejected: number;
  /** Launches that died unreported, followed by a lost-launch invocation. */
  lostLaunches: number;
}

export class Commander {
  readonly stats: CommanderStats = {
    started: 0,
    finished: 0,
    killed: 0,
    failedToStart: 0,
    acknowledged: 0,
    rejected: 0,
    lostLaunches: 0,
  };
  #queue: CommanderMessage[] = [];
  #running = new Map<number, ChildHandle>();
  /** The ack token of each running job's invocation, when it has one. */
  #tokens = new Map<number, string>();
  /** Running jobs whose invocation is a launch. */
  #launches = new Set<number>();
  #idleWaiters: (() => void)[] = [];
  #stopping = false;
  /** Children working: one-invocation children and workers that were given work. */
  #children = 0;
  #standby: Worker | null = null;
  #current: Worker | null = null;
  #workers = new Set<Worker>();

  constructor(readonly opts: CommanderOptions) {
    if (!(opts.max >= 1)) {
      throw new Error("MAX_CONCURRENT_JOBS_STARTING_OR_TERMINATING must be ≥ 1");
    }
  }

  get queued(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running.size;
  }

  enqueue(msg: CommanderMessage): void {
    if (this.#stopping) return;
    this.#queue.push(msg);
    this.#pump();
  }

  /** Starts queued messages while there is room, oldest first, skipping busy jobs. */
  #pump(): void {
    if (this.#stopping) return this.#checkIdle();
    const waiting: CommanderMessage[] = [];
    let i = 0;
    for (; i < this.#queue.length; i++) {
      const msg = this.#queue[i];
      if (this.#running.has(msg.job_id)) {
        waiting.push(msg);
        continue;
      }
      const toWorker = this.opts.worker !== undefined && msg.cmd !== "LEONEXTERMINATE";
      if (toWorker && this.#current !== null) {
        if (!this.#hand(this.#current, msg)) waiting.push(msg);
        continue;
      }
      if (this.#children >= this.opts.max) break;
      if (toWorker) {
        const w = this.#takeStandby();
        if (w === null || !this.#hand(w, msg)) waiting.push(msg);
      } else this.#start(msg);
    }
    this.#queue = waiting.concat(this.#queue.slice(i));
    // The next worker starts now, while this one works.
    if (this.opts.worker !== undefined && this.#standby === null && this.#current !== null) {
      this.#standby = this.#spawnWorker();
    }
    this.#checkIdle();
  }

  /** Starts the standby worker (null when it cannot start). */
  #spawnWorker(): Worker | null {
    let handle: WorkerHandle;
    try {
      handle = this.opts.worker!();
    } catch (e) {
      this.stats.failedToStart++;
      this.opts.log?.error("cannot start bipbip --stdin: {error}", { error: String(e) });
      return null;
    }
    const w: Worker = { handle, taken: 0, open: true, working: false, jobs: new Set() };
    this.#workers.add(w);
    handle.onDone((jobId, code) => {
      if (!w.jobs.delete(jobId)) return;
      // Reported, so it did not die: a launch's 2 is a failure bipbip has dealt with (its
      // events are written for node_change_state), not a lost launch.
      this.#finished(jobId, code, "bipbip", code === 0 || code === 1, false);
    });
    handle.exited.then((code) => {
      this.#workers.delete(w);
      if (this.#standby === w) this.#standby = null;
      if (this.#current === w) this.#current = null;
      if (w.working) this.#children--;
      // Invocations it never reported: finished all the same (as a dead child's would be).
      // Their reports were not handled: no acknowledgement, oarexec sends them again.
      for (const jobId of w.jobs) this.#finished(jobId, code, "bipbip", false, true);
      w.jobs.clear();
      this.#pump();
    });
    return w;
  }

  /** The standby becomes the current worker (one is started first if there is none). */
  #takeStandby(): Worker | null {
    const w = this.#standby ?? this.#spawnWorker();
    this.#standby = null;
    if (w === null) return null;
    this.#current = w;
    w.working = true;
    this.#children++;
    const window = setTimeout(
      () => this.#closeWorker(w),
      this.opts.batchWindowMs ?? BATCH_WINDOW_MS,
    );
    const limit = setTimeout(() => {
      this.stats.killed++;
      this.opts.log?.error("bipbip --stdin exceeded {s} s; killing it", {
        s: this.opts.childTimeoutMs / 1000,
      });
      try {
        w.handle.kill("SIGKILL");
      } catch { /* already gone */ }
    }, this.opts.childTimeoutMs);
    w.handle.exited.then(() => {
      clearTimeout(window);
      clearTimeout(limit);
    });
    return w;
  }

  #closeWorker(w: Worker): void {
    if (!w.open) return;
    w.open = false;
    if (this.#current === w) this.#current = null;
    w.handle.close();
    // Messages that waited for the current worker's capacity go to the next one.
    queueMicrotask(() => this.#pump());
  }

  /** Gives one bipbip invocation to a worker; false when it took none. */
  #hand(w: Worker, msg: CommanderMessage): boolean {
    const { args } = commanderInvocation(msg);
    if (!w.open || !w.handle.send(args)) {
      this.#closeWorker(w);
      return false;
    }
    w.taken++;
    w.jobs.add(msg.job_id);
    this.stats.started++;
    this.#running.set(msg.job_id, w.handle);
    if (msg.ack !== undefined) this.#tokens.set(msg.job_id, msg.ack);
    if (isLaunchMessage(msg)) this.#launches.add(msg.job_id);
    if (w.taken >= (this.opts.batchMax ?? BATCH_MAX)) this.#closeWorker(w);
    return true;
  }

  #finished(
    jobId: number,
    code: number,
    module: string,
    handled: boolean,
    died: boolean,
  ): void {
    this.stats.finished++;
    this.#running.delete(jobId);
    this.#settle(jobId, handled, died);
    this.opts.log?.debug("{module} {id} exited with {code}", { module, id: jobId, code });
    this.#pump();
  }

  /**
   * The job's invocation is over: its report is acknowledged if it was handled, rejected
   * otherwise (sent again by its oarexec); a launch that `died` before it reported is followed
   * by a lost-launch invocation (see the header).
   */
  #settle(jobId: number, handled: boolean, died: boolean): void {
    if (this.#launches.delete(jobId) && died && !this.#stopping) {
      this.stats.lostLaunches++;
      this.opts.log?.warn(
        "the launch of job {id} died before it reported; looking at the job again",
        {
          id: jobId,
        },
      );
      // Queued, not started here: the caller pumps once the job is no longer running.
      this.#queue.push(lostLaunchMessage(jobId));
    }
    const token = this.#tokens.get(jobId);
    if (token === undefined) return;
    this.#tokens.delete(jobId);
    const answer = handled ? this.opts.acknowledge : this.opts.reject;
    if (answer === undefined) return;
    if (handled) this.stats.acknowledged++;
    else this.stats.rejected++;
    try {
      answer(token);
    } catch (e) {
      this.opts.log?.warn("cannot answer job {id}'s report: {error}", {
        id: jobId,
        error: String(e),
      });
    }
  }

  #start(msg: CommanderMessage): void {
    const { module, args } = commanderInvocation(msg);
    let child: ChildHandle;
    try {
      child = this.opts.spawn(module, args);
    } catch (e) {
      this.stats.failedToStart++;
      this.opts.log?.error("cannot start {module} {args}: {error}", {
        module,
        args: args.join(" "),
        error: String(e),
      });
      return;
    }
    this.stats.started++;
    this.#children++;
    this.#running.set(msg.job_id, child);
    if (msg.ack !== undefined) this.#tokens.set(msg.job_id, msg.ack);
    if (isLaunchMessage(msg)) this.#launches.add(msg.job_id);
    const timer = setTimeout(() => {
      this.stats.killed++;
      this.opts.log?.error("{module} {args} exceeded {s} s; killing it", {
        module,
        args: args.join(" "),
        s: this.opts.childTimeoutMs / 1000,
      });
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, this.opts.childTimeoutMs);
    child.exited.then((code) => {
      clearTimeout(timer);
      this.stats.finished++;
      this.#children--;
      this.#running.delete(msg.job_id);
      // A bipbip process exits 1 both for "nothing to do" and for a failure (lib/runtime/oneshot.ts):
      // only 0 is taken as handled here. (The batch workers tell the two apart.)
      // bipbip exits 0, 1 or 2 by itself (2: a failure it has dealt with, its events written
      // for node_change_state); anything else is a death (a signal, the time limit).
      this.#settle(msg.job_id, code === 0, code > 2);
      this.opts.log?.debug("{module} {args} exited with {code}", {
        module,
        args: args.join(" "),
        code,
      });
      this.#pump();
    });
  }

  #checkIdle(): void {
    if (this.#queue.length === 0 && this.#running.size === 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#queue.length === 0 && this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Starts the idle standby worker ahead of the first message (no-op without workers). */
  prestart(): void {
    if (this.opts.worker !== undefined && this.#standby === null && !this.#stopping) {
      this.#standby = this.#spawnWorker();
    }
  }

  /** Drops what is queued and stops the running children (SIGTERM, then SIGKILL). */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#queue = [];
    const children = [
      ...new Set([...this.#running.values(), ...[...this.#workers].map((w) => w.handle)]),
    ];
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    const timer = setTimeout(() => {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }, graceMs);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(timer);
  }
}

/**
 * A Spawner running real processes from a command builder. Each child leads its own process
 * group (through `setsid`), so a kill reaches whatever it started too (ssh, scripts).
 */
export function processSpawner(
  build: (
    module: "bipbip" | "leon",
    args: string[],
  ) => { program: string; args: string[]; env: Record<string, string> },
  log?: Logger,
): Spawner {
  return (module, args) => {
    const cmd = build(module, args);
    const child = new Deno.Command("setsid", {
      args: [cmd.program, ...cmd.args],
      env: cmd.env,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Collected in the background: a detached grandchild may keep the pipe open long after
    // the child itself has exited, and reaping must not wait for it.
    let stderr = "";
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        if (stderr.length < 8192) stderr += decoder.decode(chunk, { stream: true });
      }
    })().catch(() => {});
    const exited = child.status.then((s) => {
      // Whatever the child left behind in its group dies with it: a job's oarexec is not
      // among them, as it starts a session of its own.
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* the group is empty */ }
      const err = stderr.trim();
      if (err) {
        log?.warn("{module} {args}: {stderr}", { module, args: args.join(" "), stderr: err });
      }
      return exitCodeOf(s);
    });
    const kill = (sig: Deno.Signal) => {
      try {
        Deno.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    return { exited, kill };
  };
}

/**
 * A WorkerSpawner running `bipbip --stdin` (built by `build`) in its own process group: one
 * invocation per input line (a JSON list of strings), one `done <job_id> <code>` line back per
 * invocation.
 */
export function processWorkerSpawner(
  build: () => { program: string; args: string[]; env: Record<string, string> },
  log?: Logger,
): WorkerSpawner {
  return () => {
    const cmd = build();
    const child = new Deno.Command("setsid", {
      args: [cmd.program, ...cmd.args],
      env: cmd.env,
      stdin: "piped",
      stdout: "piped",
      // Its log lines go straight to ours, as they come (it lives for a batch of jobs).
      stderr: "inherit",
    }).spawn();
    const callbacks: ((jobId: number, code: number) => void)[] = [];
    const stdin = child.stdin.getWriter();
    let writing: Promise<void> = Promise.resolve();
    let open = true;
    const encoder = new TextEncoder();
    (async () => {
      const decoder = new TextDecoder();
      let pending = "";
      for await (const chunk of child.stdout) {
        pending += decoder.decode(chunk, { stream: true });
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          const m = /^done (\d+) (\d+)$/.exec(line.trim());
          if (m) { for (const cb of callbacks) cb(Number(m[1]), Number(m[2])); }
        }
      }
    })().catch(() => {});
    const exited = child.status.then((s) => {
      open = false;
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* the group is empty */ }
      log?.debug("bipbip --stdin exited with {code}", { code: exitCodeOf(s) });
      return exitCodeOf(s);
    });
    return {
      exited,
      kill(sig: Deno.Signal) {
        try {
          Deno.kill(-child.pid, sig);
        } catch {
          try {
            child.kill(sig);
          } catch { /* gone */ }
        }
      },
      send(args: string[]): boolean {
        if (!open) return false;
        const line = encoder.encode(JSON.stringify(args) + "\n");
        writing = writing.then(() => stdin.write(line)).catch(() => {});
        return true;
      },
      close() {
        if (!open) return;
        open = false;
        writing = writing.then(() => stdin.close()).catch(() => {});
      },
      onDone(cb) {
        callbacks.push(cb);
      },
    };
  };
}

/**
 * Sends lines to the appendice proxy on SERVER_PORT: acknowledgements (`OARACK_<token>`),
 * rejections (`OARNACK_<token>`) and the commander's start. What is queued goes on one
 * connection, opened when there is something to send. When the proxy cannot be reached the
 * lines are dropped (logged): a proxy that is down holds no report, and the oarexecs waiting
 * send theirs again (their connections broke with it).
 */
export class AckSender {
  #queue: string[] = [];
  #sending: Promise<void> | null = null;
  sent = 0;
  lost = 0;

  constructor(
    readonly hostname: string,
    readonly port: number,
    readonly log?: Logger,
    readonly timeoutMs = 5000,
  ) {}

  send(token: string): void {
    this.line(encodeAckLine(token));
  }

  reject(token: string): void {
    this.line(encodeNackLine(token));
  }

  /** Queues one whole line (ending in a newline). */
  line(text: string): void {
    this.#queue.push(text);
    if (this.#sending === null) {
      this.#sending = this.#drain().finally(() => this.#sending = null);
    }
  }

  /**
   * Sends one line on a connection of its own, trying `attempts` times `delayMs` apart; false
   * when the proxy could not be reached (logged at debug: at a server's start the proxy may not
   * listen yet, and then it holds nothing either).
   */
  async announce(text: string, attempts = 5, delayMs = 500): Promise<boolean> {
    for (let i = 1; i <= attempts; i++) {
      try {
        await this.#write(text);
        return true;
      } catch (e) {
        this.log?.debug("cannot reach the proxy (attempt {i}): {error}", { i, error: String(e) });
        if (i < attempts) await new Promise((r) => setTimeout(r, delayMs));
      }
    }
    return false;
  }

  /** Resolves once everything queued so far was sent or dropped. */
  async flush(): Promise<void> {
    while (this.#sending !== null) await this.#sending;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const lines = this.#queue.splice(0);
      try {
        await this.#write(lines.join(""));
        this.sent += lines.length;
      } catch (e) {
        this.lost += lines.length;
        this.log?.warn("cannot send {n} line(s) to the proxy: {error}", {
          n: lines.length,
          error: String(e),
        });
      }
    }
  }

  async #write(text: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let conn: Deno.TcpConn | null = null;
    const work = (async () => {
      conn = await Deno.connect({ hostname: this.hostname, port: this.port });
      const bytes = new TextEncoder().encode(text);
      let n = 0;
      while (n < bytes.length) n += await conn.write(bytes.subarray(n));
    })();
    try {
      await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timed out")), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      work.catch(() => {}).finally(() => {
        try {
          (conn as Deno.TcpConn | null)?.close();
        } catch { /* closed already */ }
      });
    }
  }
}
