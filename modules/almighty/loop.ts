/**
 * Almighty's main loop: performs the actions the automaton asks for. The effects come in as
 * functions so the loop runs the same against real sockets and processes (modules/almighty/main.ts)
 * and in tests.
 */
import type { Logger } from "../../lib/runtime/log.ts";
import { parseAlmightyMessage } from "../../lib/protocol/mod.ts";
import {
  type Automaton,
  initialAutomaton,
  type Input,
  type OneShotModule,
  schedulingSpacing,
  type Settings,
  step,
} from "./automaton.ts";

export interface LoopEffects {
  /** The next raw message, or null at the timeout or once `signal` aborts. */
  receive(timeoutMs: number, signal: AbortSignal): Promise<Uint8Array | null>;
  /** Runs a one-shot module to completion; its exit code. */
  runModule(module: OneShotModule, signal: AbortSignal): Promise<number>;
  /** Wall clock, seconds. */
  now(): number;
}

export interface LoopObserver {
  onStep?(a: Automaton): void;
}

/** Messages taken at once from the socket (a flood must not hold the loop). */
const MAX_DRAINED = 1000;

/** Runs until a signal (or a bad module exit) stops it; returns almighty's exit code (10). */
export async function runLoop(
  effects: LoopEffects,
  settings: Settings,
  stop: AbortSignal,
  log?: Logger,
  observer: LoopObserver = {},
): Promise<number> {
  let a = initialAutomaton();
  let input: Input = { kind: "continue" };
  for (;;) {
    if (stop.aborted && input.kind !== "ran") input = { kind: "signal" };
    const r = step(a, input, effects.now(), settings);
    a = r.automaton;
    for (const note of r.notes) log?.warn(note);
    observer.onStep?.(a);
    const action = r.action;
    switch (action.kind) {
      case "exit":
        log?.info("Stop Almighty");
        return action.code;
      case "continue":
        input = { kind: "continue" };
        break;
      case "receive": {
        const raw = await effects.receive(
          receiveTimeout(a, action.timeoutMs, settings, effects),
          stop,
        );
        if (raw === null) {
          input = stop.aborted ? { kind: "signal" } : { kind: "received", cmd: null };
          break;
        }
        // What is already waiting behind it goes in too (see Input "received").
        const cmds = await drain(raw, effects, stop, log);
        input = cmds.length === 0
          ? { kind: "continue" }
          : { kind: "received", cmd: cmds[0], more: cmds.slice(1) };
        break;
      }
      case "run": {
        log?.debug("running {module}", { module: action.module });
        const code = await effects.runModule(action.module, stop);
        log?.debug("{module} exited with {code}", { module: action.module, code });
        // The commands sent during the run are queued now: the run that follows (a state
        // transition) answers those of its own state (automaton.ts answeredBy).
        const more = stop.aborted
          ? []
          : await drain(await effects.receive(0, stop), effects, stop, log);
        input = { kind: "ran", module: action.module, code, more };
        break;
      }
    }
  }
}

/** The commands of `first` and of every message already waiting behind it (at most MAX_DRAINED). */
async function drain(
  first: Uint8Array | null,
  effects: LoopEffects,
  stop: AbortSignal,
  log?: Logger,
): Promise<string[]> {
  const cmds: string[] = [];
  for (let m: Uint8Array | null = first; m !== null;) {
    const parsed = parseAlmightyMessage(m);
    if (!parsed.ok) log?.warn("dropped a message: {error}", { error: parsed.error });
    else {
      log?.debug("received {cmd}", { cmd: parsed.value.cmd });
      cmds.push(parsed.value.cmd);
    }
    m = cmds.length < MAX_DRAINED ? await effects.receive(0, stop) : null;
  }
  return cmds;
}

/**
 * The receive timeout. A scheduling request refused by SCHEDULER_MIN_TIME_BETWEEN_2_CALLS is
 * only re-enqueued by a Time update, which a receive timeout triggers: waking up exactly when
 * the scheduler may run again, instead of after the full read timeout, serves the request as
 * soon as the rule allows (the automaton's decisions are unchanged, the Time tick comes sooner).
 */
export function receiveTimeout(
  a: Automaton,
  timeoutMs: number,
  settings: Settings,
  effects: Pick<LoopEffects, "now">,
): number {
  if (!a.schedulerWanted) return timeoutMs;
  const untilAllowed = (a.lastScheduler + schedulingSpacing(a, settings) - effects.now()) * 1000;
  return Math.max(0, Math.min(timeoutMs, Math.ceil(untilAllowed)));
}
