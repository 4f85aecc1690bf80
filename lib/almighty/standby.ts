/**
 * One-shot modules started ahead of need. A module's start-up (loading its code, reading the
 * configuration, connecting to the database: ~100 ms of a ~250 ms meta_sched run on our
 * machines) sat on every scheduling cycle. The busiest modules are therefore started as soon as
 * their previous run ended, with OAR_STANDBY=1: they get ready and wait for `go` on stdin
 * (lib/oneshot.ts). Almighty's contract with them is unchanged: one process per run, its exit
 * code the result.
 *
 * A standby older than its maximum age is replaced by a fresh start (it read the configuration
 * when it started); one that died while waiting is replaced too. Closing its stdin dismisses it.
 */
import type { Config } from "../config.ts";
import { moduleCommand } from "../spawn.ts";
import type { OneShotModule } from "./automaton.ts";

/** Run often enough to be worth a waiting process each. */
export const STANDBY_MODULES: readonly OneShotModule[] = ["meta_sched", "node_change_state"];
const DEFAULT_MAX_AGE_MS = 120_000;

interface Standby {
  child: Deno.ChildProcess;
  since: number;
  exited: boolean;
}

export class StandbyPool {
  readonly #ready = new Map<OneShotModule, Standby>();
  readonly #dismissed = new Set<Promise<unknown>>();
  #stopped = false;

  constructor(
    readonly config: Config,
    readonly modules: readonly OneShotModule[] = STANDBY_MODULES,
    readonly maxAgeMs = DEFAULT_MAX_AGE_MS,
    readonly now: () => number = Date.now,
  ) {}

  /** A process running `module` now: its standby when a usable one waits, else a new one. */
  start(module: OneShotModule): Deno.ChildProcess {
    const s = this.#ready.get(module);
    this.#ready.delete(module);
    if (s && !s.exited && this.now() - s.since <= this.maxAgeMs && this.#go(s.child)) {
      return s.child;
    }
    if (s) this.#dismiss(s.child);
    return this.#spawn(module, false);
  }

  /** After a run of `module`: its next run starts getting ready. */
  prepare(module: OneShotModule): void {
    if (this.#stopped || !this.modules.includes(module) || this.#ready.has(module)) return;
    let child: Deno.ChildProcess;
    try {
      child = this.#spawn(module, true);
    } catch {
      return; // the next run starts the usual way, and says what is wrong
    }
    const s: Standby = { child, since: this.now(), exited: false };
    child.status.then(() => (s.exited = true), () => (s.exited = true));
    this.#ready.set(module, s);
  }

  /** Dismisses every standby and waits for them to leave. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#ready.values()) this.#dismiss(s.child);
    this.#ready.clear();
    await Promise.all(this.#dismissed);
  }

  #spawn(module: OneShotModule, standby: boolean): Deno.ChildProcess {
    const cmd = moduleCommand(module, this.config);
    return new Deno.Command(cmd.program, {
      args: cmd.args,
      env: standby ? { ...cmd.env, OAR_STANDBY: "1" } : cmd.env,
      stdin: standby ? "piped" : "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  }

  /** false when the standby can no longer be told (it is gone). */
  #go(child: Deno.ChildProcess): boolean {
    try {
      const w = child.stdin.getWriter();
      w.write(new TextEncoder().encode("go\n")).then(() => w.close()).catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  #dismiss(child: Deno.ChildProcess): void {
    const left = (async () => {
      await child.stdin.close().catch(() => {});
      await child.status;
    })().catch(() => {});
    this.#dismissed.add(left);
    left.finally(() => this.#dismissed.delete(left));
  }
}
