/**
 * oarexec's exit codes (docs/modules.md §4.5): the API between oarexec and check_end_of_job (§5.1),
 * and the raw wait status of the user command that goes with them in the report line.
 */
import { SIGNAL_NUMBERS } from "../runtime/signals.ts";

export const OarexecExit = {
  ok: 0,
  prologue: 1,
  epilogue: 2,
  killed: 3,
  killedEpilogue: 4,
  nodeFile: 5,
  pidFile: 6,
  userShell: 7,
  /** The job's user is root, oar or a system account this node does not allow. */
  userNotAllowed: 9,
  tmpDirectory: 8,
  workingDirectory: 10,
  outputFiles: 20,
  descriptorTimeout: 30,
  badDescriptor: 31,
  checkpointed: 40,
  checkpointedEpilogue: 41,
  userSignal: 42,
  /** Synthetic, from bipbip: oarexec could not be launched or never met the rendezvous. */
  noRendezvous: 50,
} as const;

/** Codes oarexec exits with before the rendezvous (it has not reported anything then). */
export const EARLY_EXITS: ReadonlySet<number> = new Set([1, 5, 6, 7, 8, 9, 30, 31]);

/** How the job ended, as oarexec saw it. */
export interface Outcome {
  /** 0, or 10 (cannot enter the launching directory), or 20 (cannot open output files). */
  base: 0 | 10 | 20;
  killed: boolean;
  checkpointed: boolean;
  userSignalled: boolean;
  epilogueFailed: boolean;
}

/** The reference's composition of the final code (oarexec's end). */
export function finalExitCode(o: Outcome): number {
  if (o.epilogueFailed) {
    if (o.killed) return OarexecExit.killedEpilogue;
    if (o.checkpointed) return OarexecExit.checkpointedEpilogue;
    return OarexecExit.epilogue + o.base;
  }
  if (o.killed) return OarexecExit.killed;
  if (o.checkpointed) return OarexecExit.checkpointed;
  if (o.userSignalled) return OarexecExit.userSignal;
  return o.base;
}

/** `TERM`, `SIGTERM` or `15` to Deno's signal name; null when it is none we know. */
export function signalName(s: string | number): Deno.Signal | null {
  const text = String(s).trim().toUpperCase();
  if (/^\d{1,2}$/.test(text)) {
    const n = Number(text);
    const name = Object.entries(SIGNAL_NUMBERS).find(([, v]) => v === n)?.[0];
    return (name ?? null) as Deno.Signal | null;
  }
  const name = text.startsWith("SIG") ? text : `SIG${text}`;
  return name in SIGNAL_NUMBERS ? name as Deno.Signal : null;
}

/** The raw wait status the reference reports: exit n ⇒ n << 8, killed by signal s ⇒ s. */
export function waitStatus(status: Deno.CommandStatus): number {
  if (status.signal) return SIGNAL_NUMBERS[status.signal] ?? 0;
  return (status.code & 0xff) << 8;
}
