/**
 * Almighty's companions (appendice_proxy, bipbip_commander, greta): started with almighty,
 * restarted with back-off whenever one dies (docs/differences.md §10: OAR never did), and stopped
 * with it.
 */
import type { Logger } from "../../lib/runtime/log.ts";
import { exitCodeOf } from "../../lib/runtime/signals.ts";
import type { ChildCommand } from "../../lib/runtime/spawn.ts";

export interface SupervisorOptions {
  /** First restart delay; doubles up to maxBackoffMs, back to this after a stable run. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A run at least this long counts as stable. */
  stableMs?: number;
  /** Called when a companion that died has just been started again. */
  onRestart?: (name: string) => void;
  log?: Logger;
}

interface Companion {
  name: string;
  command: ChildCommand;
  child: Deno.ChildProcess | null;
  backoffMs: number;
  restarts: number;
  timer: ReturnType<typeof setTimeout> | null;
  exited: Promise<void> | null;
}

export class Supervisor {
  readonly #companions = new Map<string, Companion>();
  #stopping = false;

  constructor(readonly opts: SupervisorOptions = {}) {}

  /** Starts a companion and keeps it running until stop(). */
  add(name: string, command: ChildCommand): void {
    const c: Companion = {
      name,
      command,
      child: null,
      backoffMs: this.opts.minBackoffMs ?? 500,
      restarts: 0,
      timer: null,
      exited: null,
    };
    this.#companions.set(name, c);
    this.#start(c);
  }

  /** How many times each companion was restarted. */
  restarts(name: string): number {
    return this.#companions.get(name)?.restarts ?? 0;
  }

  pid(name: string): number | undefined {
    return this.#companions.get(name)?.child?.pid;
  }

  #start(c: Companion): void {
    if (this.#stopping) return;
    const started = Date.now();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(c.command.program, {
        args: c.command.args,
        env: { ...c.command.env, OAR_SUPERVISED: "1" },
        // Never written to: it closes when this process dies, which tells the companion to stop
        // (lib/runtime/parent_watch.ts).
        stdin: "piped",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      this.opts.log?.error("cannot start {name}: {error}", { name: c.name, error: String(e) });
      this.#scheduleRestart(c);
      return;
    }
    c.child = child;
    this.opts.log?.info("started {name} (pid {pid})", { name: c.name, pid: child.pid });
    c.exited = child.status.then((status) => {
      c.child = null;
      if (this.#stopping) return;
      this.opts.log?.error("{name} died (exit {code}); restarting it in {ms} ms", {
        name: c.name,
        code: exitCodeOf(status),
        ms: c.backoffMs,
      });
      if (Date.now() - started >= (this.opts.stableMs ?? 60_000)) {
        c.backoffMs = this.opts.minBackoffMs ?? 500;
      }
      this.#scheduleRestart(c);
    });
  }

  #scheduleRestart(c: Companion): void {
    const delay = c.backoffMs;
    c.backoffMs = Math.min(delay * 2, this.opts.maxBackoffMs ?? 30_000);
    c.timer = setTimeout(() => {
      c.timer = null;
      c.restarts++;
      this.#start(c);
      if (c.child !== null) this.opts.onRestart?.(c.name);
    }, delay);
  }

  /** From now on, a companion that exits is not restarted (the server is stopping). */
  stopping(): void {
    this.#stopping = true;
  }

  /** Stops every companion: SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    const waits: Promise<unknown>[] = [];
    for (const c of this.#companions.values()) {
      if (c.timer) clearTimeout(c.timer);
      const child = c.child;
      if (!child) continue;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      waits.push(child.status.finally(() => clearTimeout(timer)));
    }
    await Promise.all(waits);
  }
}
