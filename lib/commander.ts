/**
 * bipbip_commander's queue (spec §3, DECISIONS §9): runs `bipbip <id> ...` or `leon <id>` for
 * each message, at most `max` children at once and one at a time per job; a message for a job
 * whose child still runs waits its turn (duplicates are kept, in order, not dropped); a child
 * over its time limit is killed and logged; finished children are reaped as soon as they exit.
 */
import type { Logger } from "./log.ts";
import { exitCodeOf } from "./signals.ts";
import { commanderInvocation, type CommanderMessage } from "./protocol.ts";

export interface ChildHandle {
  /** Resolves with the exit code (128+n for a signal) once the child is reaped. */
  readonly exited: Promise<number>;
  kill(signal: Deno.Signal): void;
}

export type Spawner = (module: "bipbip" | "leon", args: string[]) => ChildHandle;

export interface CommanderOptions {
  max: number;
  childTimeoutMs: number;
  spawn: Spawner;
  log?: Logger;
}

export interface CommanderStats {
  started: number;
  finished: number;
  killed: number;
  failedToStart: number;
}

export class Commander {
  readonly stats: CommanderStats = { started: 0, finished: 0, killed: 0, failedToStart: 0 };
  #queue: CommanderMessage[] = [];
  #running = new Map<number, ChildHandle>();
  #idleWaiters: (() => void)[] = [];
  #stopping = false;

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
    if (this.#running.size >= this.opts.max || this.#queue.length === 0) return this.#checkIdle();
    const waiting: CommanderMessage[] = [];
    let i = 0;
    for (; i < this.#queue.length && this.#running.size < this.opts.max; i++) {
      const msg = this.#queue[i];
      if (this.#running.has(msg.job_id)) waiting.push(msg);
      else this.#start(msg);
    }
    this.#queue = waiting.concat(this.#queue.slice(i));
    this.#checkIdle();
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
    this.#running.set(msg.job_id, child);
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
      this.#running.delete(msg.job_id);
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

  /** Drops what is queued and stops the running children (SIGTERM, then SIGKILL). */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#queue = [];
    const children = [...this.#running.values()];
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
