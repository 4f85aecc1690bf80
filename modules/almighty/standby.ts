/**
 * One-shot modules kept ready by almighty. A module's start-up (the Deno runtime, postgres.js
 * and our code loaded, the configuration read, the database connected: ~60 of the ~100 ms of
 * CPU of an idle meta_sched run, and PostgreSQL's ~4 ms for each new backend and again its
 * catalog look-ups for each statement) sat on every scheduling cycle, and almighty runs
 * meta_sched then node_change_state at every cycle.
 *
 * The busiest modules therefore run with OAR_STANDBY=1 (lib/runtime/oneshot.ts): ready ahead, they run
 * at each `go` written on their stdin, acknowledge it, and answer with the run's exit code on
 * their stdout (lib/protocol/mod.ts), which almighty takes exactly as it takes a process's exit code.
 * A process serves further runs until it is 2 minutes old or has served 200 runs, or a run
 * failed, or oar.conf changed since it started (it read the configuration then); then it is
 * dismissed (its stdin closed) and a fresh one gets ready at once for the next run. One found
 * dead before it acknowledged a go did not run: a fresh process does the run. One that dies
 * during a run gives its exit status as the run's code, as a process started for that run alone
 * would.
 *
 * The other modules (sarko, finaud, leon) start a process per run.
 */
import type { Config } from "../../lib/runtime/config.ts";
import { moduleCommand } from "../../lib/runtime/spawn.ts";
import { encodeStandbyGo, parseStandbyLine, readLines } from "../../lib/protocol/mod.ts";
import { exitCodeOf } from "../../lib/runtime/signals.ts";
import type { OneShotModule } from "./automaton.ts";

/** Run often enough to be worth a waiting process each. */
export const STANDBY_MODULES: readonly OneShotModule[] = ["meta_sched", "node_change_state"];
const DEFAULT_MAX_AGE_MS = 120_000;
/** Bounds what one process may accumulate (memory, a leak we do not know of) over its runs. */
const DEFAULT_MAX_RUNS = 200;

/** A module process started with OAR_STANDBY=1, and what almighty knows of it. */
class Standby {
  /** On the pool's clock (its maximum age). */
  readonly since: number;
  runs = 0;
  exited = false;
  readonly #lines: AsyncGenerator<string>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(
    readonly child: Deno.ChildProcess,
    now: number,
    /** oar.conf as it was when the process started (StandbyPool's configStamp). */
    readonly configStamp: string | null,
  ) {
    this.since = now;
    this.#lines = readLines(child.stdout);
    this.#writer = child.stdin.getWriter();
    child.status.then(() => (this.exited = true), () => (this.exited = true));
  }

  /** false when it can no longer be told (it is gone). */
  go(): boolean {
    if (this.exited) return false;
    try {
      this.#writer.write(new TextEncoder().encode(encodeStandbyGo())).catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  /**
   * How the run under way ended: its `done` line's code, or, when the process ends without one,
   * its exit status. `more`: the process waits for another run. `taken`: the process
   * acknowledged the go (false: it was gone before, and did not run). Other output of the module
   * is passed on to almighty's.
   */
  async result(): Promise<{ code: number; more: boolean; taken: boolean }> {
    let taken = false;
    for (;;) {
      const next = await this.#lines.next();
      if (next.done) return { code: exitCodeOf(await this.child.status), more: false, taken };
      const msg = parseStandbyLine(next.value);
      if (msg?.kind === "running") taken = true;
      else if (msg?.kind === "done") return { code: msg.code, more: msg.more, taken: true };
      else if (next.value !== "") console.log(next.value);
    }
  }

  /** Closes its input (it leaves) and waits for it to be gone. */
  async dismiss(): Promise<void> {
    await this.#writer.close().catch(() => {});
    // Its output is let go: read from (then the reader cancels it) or never read.
    await this.#lines.return(undefined).catch(() => {});
    await this.child.stdout.cancel().catch(() => {});
    await this.child.status.catch(() => {});
  }
}

export interface StandbyLimits {
  maxAgeMs?: number;
  maxRuns?: number;
}

export class StandbyPool {
  readonly #ready = new Map<OneShotModule, Standby>();
  readonly #dismissed = new Set<Promise<unknown>>();
  readonly maxAgeMs: number;
  readonly maxRuns: number;
  #stopped = false;

  constructor(
    readonly config: Config,
    readonly modules: readonly OneShotModule[] = STANDBY_MODULES,
    limits: StandbyLimits = {},
    readonly now: () => number = Date.now,
  ) {
    this.maxAgeMs = limits.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.maxRuns = limits.maxRuns ?? DEFAULT_MAX_RUNS;
  }

  /**
   * Runs `module` once and returns its exit code. `onChild` learns the process doing the run
   * (so that a stop may signal it).
   */
  async run(module: OneShotModule, onChild: (c: Deno.ChildProcess) => void = () => {}) {
    if (!this.modules.includes(module)) {
      const child = this.#spawn(module, false);
      onChild(child);
      return exitCodeOf(await child.status);
    }
    let s = this.#ready.get(module);
    this.#ready.delete(module);
    if (s && (!this.#usable(s) || !s.go())) {
      this.#dismiss(s);
      s = undefined;
    }
    const runOn = (s: Standby) => {
      onChild(s.child);
      s.runs++;
      return s.result();
    };
    let outcome = s ? await runOn(s) : null;
    if (s && outcome && !outcome.taken) {
      // It died while it waited (killed, out of memory): its exit status is no run's code.
      this.#dismiss(s);
      outcome = null;
    }
    if (outcome === null) {
      // None ready (the first run, a failed or a dead one): one started now runs at once, and
      // should it not even start, its exit status is the code, as for any process.
      s = this.#standby(module);
      s.go();
      outcome = await runOn(s);
    }
    const { code, more } = outcome;
    if (more && !this.#stopped) this.#ready.set(module, s!);
    else this.#dismiss(s!);
    // A process past its limits is replaced now, while the cycle goes on without it.
    if (!this.#stopped && !this.#usable(this.#ready.get(module))) this.prepare(module);
    return code;
  }

  /** A process for the next run of `module` gets ready, unless one is. */
  prepare(module: OneShotModule): void {
    if (this.#stopped || !this.modules.includes(module)) return;
    const s = this.#ready.get(module);
    if (s && this.#usable(s)) return;
    if (s) this.#dismiss(s);
    this.#ready.delete(module);
    try {
      this.#ready.set(module, this.#standby(module));
    } catch {
      // The next run starts one and says what is wrong.
    }
  }

  /** Almighty is stopping: no process is started ahead any more. */
  stopping(): void {
    this.#stopped = true;
  }

  /** Dismisses every standby and waits for them to leave. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#ready.values()) this.#dismiss(s);
    this.#ready.clear();
    await Promise.all(this.#dismissed);
  }

  #usable(s: Standby | undefined): s is Standby {
    return s !== undefined && !s.exited && this.now() - s.since <= this.maxAgeMs &&
      s.runs < this.maxRuns && s.configStamp === this.#configStamp();
  }

  /**
   * oar.conf's modification time and size: when they change, a standby read the old file. (Not
   * compared with the clock: a file dated in the future would make every standby look stale.)
   */
  #configStamp(): string | null {
    if (!this.config.source) return null;
    try {
      const st = Deno.statSync(this.config.source);
      return `${st.mtime?.getTime()}:${st.size}`;
    } catch {
      return null; // unreadable now: the module will say so when it starts
    }
  }

  /** A standby of `module`, started now. */
  #standby(module: OneShotModule): Standby {
    // Read before the spawn: an oar.conf written meanwhile makes the stamps differ.
    const stamp = this.#configStamp();
    return new Standby(this.#spawn(module, true), this.now(), stamp);
  }

  #spawn(module: OneShotModule, standby: boolean): Deno.ChildProcess {
    const cmd = moduleCommand(module, this.config);
    return new Deno.Command(cmd.program, {
      args: cmd.args,
      env: standby ? { ...cmd.env, OAR_STANDBY: "1" } : cmd.env,
      stdin: standby ? "piped" : "null",
      stdout: standby ? "piped" : "inherit",
      stderr: "inherit",
    }).spawn();
  }

  #dismiss(s: Standby): void {
    const left = s.dismiss().catch(() => {});
    this.#dismissed.add(left);
    left.finally(() => this.#dismissed.delete(left));
  }
}
