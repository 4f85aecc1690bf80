/**
 * Almighty's automaton (docs/modules.md §1.3-§1.5) as a pure function of (state, input, clock).
 *
 * The process (modules/almighty/main.ts and loop.ts) performs the actions this returns:
 * receive a command with a timeout, run a one-shot module and report its exit code, or exit.
 * Keeping every decision here lets the tests replay each case of the reference without sockets
 * or processes, and with any clock.
 */

export type AlmightyState =
  | "Qget"
  | "Scheduler"
  | "Time update"
  | "Check for villains"
  | "Check node states"
  | "Leon"
  | "Change node state";

/** The one-shot modules almighty runs, by their module names. */
export type OneShotModule = "meta_sched" | "sarko" | "finaud" | "leon" | "node_change_state";

export interface Settings {
  /** SCHEDULER_MIN_TIME_BETWEEN_2_CALLS, seconds: the longest spacing between two rounds. */
  minBetween: number;
  /**
   * SCHEDULER_ADAPTIVE_SPACING: rounds are spaced by this multiple of the last round's
   * duration, up to minBetween (0: always minBetween, OAR's rule). The spacing exists to bound
   * what scheduling costs; a fixed 5 s made an idle job wait 5 s for a round of 30 ms.
   */
  spacingFactor: number;
  /** FINAUD_FREQUENCY, seconds; 0 disables node checks. */
  finaudPeriod: number;
  /** A scheduling round at least this often (60 s in OAR). */
  schedulerTimeout: number;
  /** Sarko at least this often (10 s in OAR). */
  villainsTimeout: number;
  /** Receive timeout when the command queue is empty (5000 ms in OAR). */
  readTimeoutMs: number;
}

export const DEFAULT_SETTINGS: Settings = {
  minBetween: 5,
  spacingFactor: 0,
  finaudPeriod: 300,
  schedulerTimeout: 60,
  villainsTimeout: 10,
  readTimeoutMs: 5000,
};

export interface Automaton {
  state: AlmightyState;
  queue: string[];
  lastScheduler: number;
  /** When the current (or last) round started, and how long the last one took, seconds. */
  schedulerStarted: number;
  schedulerCost: number;
  lastVillains: number;
  lastCheckNodes: number;
  schedulerWanted: boolean;
  finish: boolean;
}

export function initialAutomaton(): Automaton {
  return {
    state: "Qget",
    queue: [],
    lastScheduler: 0,
    schedulerStarted: 0,
    schedulerCost: 0,
    lastVillains: 0,
    lastCheckNodes: 0,
    schedulerWanted: false,
    finish: false,
  };
}

/** What the process must do next. */
export type Action =
  | { kind: "receive"; timeoutMs: number }
  | { kind: "run"; module: OneShotModule }
  | { kind: "exit"; code: number }
  /** Nothing external: call step again with `{ kind: "continue" }`. */
  | { kind: "continue" };

/** The outcome of the previous action. */
export type Input =
  | { kind: "continue" }
  /**
   * A received command, or null when the receive timed out (OAR's synthetic `Time`); `more`:
   * the commands that were already waiting behind it, queued at once so that duplicates
   * collapse (a burst of ChState is one node_change_state run, not one per message).
   */
  | { kind: "received"; cmd: string | null; more?: readonly string[] }
  /** `more`: the commands received while it ran, queued before its exit code is acted on. */
  | { kind: "ran"; module: OneShotModule; code: number; more?: readonly string[] }
  /** SIGTERM, SIGINT or SIGUSR1: stop at the next step (docs/modules.md §1.5). */
  | { kind: "signal" };

export interface Step {
  automaton: Automaton;
  action: Action;
  /** Lines worth logging about this step (unknown commands, bad exit codes). */
  notes: string[];
}

const COMMAND_TARGET: Readonly<Record<string, AlmightyState>> = {
  "Qsub": "Scheduler",
  "Qsub -I": "Scheduler",
  "Term": "Scheduler",
  "BipBip": "Scheduler",
  "Scheduling": "Scheduler",
  "Qresume": "Scheduler",
  "Walltime": "Scheduler",
  "Qdel": "Leon",
  "Villains": "Check for villains",
  "Finaud": "Check node states",
  "Time": "Time update",
  "ChState": "Change node state",
};

/** The module each running state launches. */
const STATE_MODULE: Partial<Record<AlmightyState, OneShotModule>> = {
  "Scheduler": "meta_sched",
  "Check for villains": "sarko",
  "Check node states": "finaud",
  "Leon": "leon",
  "Change node state": "node_change_state",
};

/** Appends a command unless an identical one is already queued (docs/modules.md §1.3). */
export function addCommand(queue: readonly string[], cmd: string): string[] {
  return queue.includes(cmd) ? [...queue] : [...queue, cmd];
}

/** Seconds that must pass between the end of a round and the start of the next. */
export function schedulingSpacing(a: Automaton, s: Settings): number {
  if (s.spacingFactor <= 0) return s.minBetween;
  return Math.min(s.minBetween, s.spacingFactor * a.schedulerCost);
}

/** Enqueues the periodic commands that are due (docs/modules.md §1.4 "Time update"). */
export function timeUpdate(a: Automaton, now: number, s: Settings): Automaton {
  let queue = a.queue;
  if (
    now >= a.lastScheduler + s.schedulerTimeout ||
    (a.schedulerWanted && now >= a.lastScheduler + schedulingSpacing(a, s))
  ) queue = addCommand(queue, "Scheduling");
  if (now >= a.lastVillains + s.villainsTimeout) queue = addCommand(queue, "Villains");
  if (s.finaudPeriod > 0 && now >= a.lastCheckNodes + s.finaudPeriod) {
    queue = addCommand(queue, "Finaud");
  }
  return { ...a, queue };
}

/**
 * One step of the automaton. `now` is the wall clock in seconds (almighty is the only module
 * that uses the local clock, docs/modules.md conventions).
 */
export function step(
  a: Automaton,
  input: Input,
  now: number,
  s: Settings = DEFAULT_SETTINGS,
): Step {
  const notes: string[] = [];
  let next: Automaton = { ...a };

  // Record the outcome of the previous action first.
  switch (input.kind) {
    case "signal":
      next.finish = true;
      break;
    case "received":
      // A timeout (or any receive error) is OAR's synthetic Time command.
      next.queue = addCommand(next.queue, input.cmd ?? "Time");
      for (const cmd of input.more ?? []) next.queue = addCommand(next.queue, cmd);
      break;
    case "ran":
      for (const cmd of input.more ?? []) next.queue = addCommand(next.queue, cmd);
      next = afterModule(next, input.module, input.code, now, notes);
      return { automaton: next, action: { kind: "continue" }, notes };
    case "continue":
      break;
  }

  if (next.finish) return { automaton: next, action: { kind: "exit", code: 10 }, notes };

  switch (next.state) {
    case "Qget": {
      if (next.queue.length === 0) {
        return { automaton: next, action: { kind: "receive", timeoutMs: s.readTimeoutMs }, notes };
      }
      let [cmd, ...rest] = next.queue;
      // A Time tick is worthless while real work waits.
      if (cmd === "Time" && rest.length > 0) [cmd, ...rest] = rest;
      next.queue = rest;
      const target = COMMAND_TARGET[cmd];
      if (target === undefined) notes.push(`unknown command ${JSON.stringify(cmd).slice(0, 100)}`);
      else next.state = target;
      return { automaton: next, action: { kind: "continue" }, notes };
    }
    case "Time update":
      next = timeUpdate(next, now, s);
      next.state = "Qget";
      return { automaton: next, action: { kind: "continue" }, notes };
    case "Scheduler":
      if (now >= next.lastScheduler + schedulingSpacing(next, s)) {
        next.schedulerWanted = false;
        next.schedulerStarted = now;
        next.queue = answeredBy(next.queue, "Scheduler");
        return { automaton: next, action: { kind: "run", module: "meta_sched" }, notes };
      }
      // Too early: remember the request; Time update re-enqueues it once min_between passed.
      next.schedulerWanted = true;
      next.state = "Time update";
      return { automaton: next, action: { kind: "continue" }, notes };
    default: {
      const module = STATE_MODULE[next.state];
      if (module === undefined) {
        notes.push(`unknown state ${next.state}`);
        next.finish = true;
        return { automaton: next, action: { kind: "continue" }, notes };
      }
      next.queue = answeredBy(next.queue, next.state);
      return { automaton: next, action: { kind: "run", module }, notes };
    }
  }
}

/**
 * The queue once a run for `state` starts: that run sees every change notified so far, so the
 * commands queued for the same state (Term, BipBip, Qsub... all ask for the Scheduler; ChState
 * for NodeChangeState, also run after each scheduling) are answered by it. Run separately,
 * each was one more run finding nothing new to do.
 */
function answeredBy(queue: readonly string[], state: AlmightyState): string[] {
  return queue.filter((c) => COMMAND_TARGET[c] !== state);
}

/** Transitions on a module's exit code (docs/modules.md §1.4 automaton summary). */
function afterModule(
  a: Automaton,
  module: OneShotModule,
  code: number,
  now: number,
  notes: string[],
): Automaton {
  const next = { ...a };
  const unexpected = () => {
    notes.push(`${module} exited with unexpected code ${code}; stopping`);
    next.finish = true;
  };
  switch (module) {
    case "meta_sched":
      next.lastScheduler = now;
      next.schedulerCost = Math.max(0, now - next.schedulerStarted);
      if (code === 0) next.state = "Change node state";
      else if (code === 1) next.state = "Scheduler";
      else if (code === 2) next.state = "Leon";
      else unexpected();
      break;
    case "sarko":
      next.lastVillains = now;
      if (code === 0) next.state = "Time update";
      else if (code === 1) next.state = "Leon";
      else unexpected();
      break;
    case "finaud":
      next.lastCheckNodes = now;
      if (code === 0) next.state = "Time update";
      else if (code === 1) next.state = "Change node state";
      else unexpected();
      break;
    case "leon":
      next.state = "Time update";
      if (code === 1) next.queue = addCommand(next.queue, "Term");
      break;
    case "node_change_state":
      if (code === 0) next.state = "Time update";
      else if (code === 1) next.state = "Scheduler";
      else if (code === 2) {
        next.state = "Leon";
        next.queue = addCommand(next.queue, "Term");
      } else unexpected();
      break;
  }
  return next;
}
