/**
 * bipbip_commander messages: JSON `{"job_id", "cmd", "args"}` (docs/modules.md §3), and the bipbip
 * or leon invocation each stands for.
 */
import {
  fail,
  isJobId,
  isStringArray,
  ok,
  type Parsed,
  parseJsonObject,
  pyJson,
} from "./common.ts";
import { isAckToken } from "./report_ack.ts";

export const COMMANDER_COMMANDS = ["OAREXEC", "OARRUNJOB", "LEONEXTERMINATE", "OARRUN"] as const;
export type CommanderCommand = typeof COMMANDER_COMMANDS[number];

export interface CommanderMessage {
  job_id: number;
  cmd: CommanderCommand;
  args: string[];
  /**
   * Set by the appendice proxy on an oarexec report it holds the connection of: once the
   * invocation has handled the report, bipbip_commander sends it back (`OARACK_<token>`), and
   * the proxy acknowledges the report to oarexec. Absent from OAR's own senders.
   */
  ack?: string;
}

export function encodeCommanderMessage(msg: CommanderMessage): string {
  return pyJson({ job_id: msg.job_id, cmd: msg.cmd, args: msg.args, ack: msg.ack });
}

export function parseCommanderMessage(input: Uint8Array | string): Parsed<CommanderMessage> {
  const r = parseJsonObject(input);
  if (!r.ok) return r;
  const { job_id, cmd, args } = r.value;
  if (!isJobId(job_id)) return fail('commander message needs an integer "job_id"');
  if (typeof cmd !== "string" || !(COMMANDER_COMMANDS as readonly string[]).includes(cmd)) {
    return fail(`unknown commander command ${JSON.stringify(cmd)?.slice(0, 40)}`);
  }
  const ack = r.value.ack;
  if (ack !== undefined && ack !== null && !isAckToken(ack)) return fail('bad "ack" token');
  const tag = typeof ack === "string" ? { ack } : {};
  if (args === undefined || args === null) {
    // OAR only tolerates a missing args list for LEONEXTERMINATE; we accept it for all.
    return ok({ job_id, cmd: cmd as CommanderCommand, args: [], ...tag });
  }
  if (!isStringArray(args)) return fail('"args" must be a list of strings');
  if (args.length > 16) return fail("too many args");
  return ok({ job_id, cmd: cmd as CommanderCommand, args, ...tag });
}

/** The bipbip (or leon) invocation a commander message stands for (docs/modules.md §3). */
export function commanderInvocation(
  msg: CommanderMessage,
): { module: "bipbip" | "leon"; args: string[] } {
  if (msg.cmd === "LEONEXTERMINATE") return { module: "leon", args: [String(msg.job_id)] };
  return { module: "bipbip", args: [String(msg.job_id), ...msg.args] };
}

/**
 * The argument of `bipbip <id> --lost-launch` (issue 22): the job's launch died with its bipbip
 * (killed, timed out, its worker gone) before it reported; bipbip_commander, which saw it die,
 * has the job looked at at once instead of leaving it to sarko's stuck-job limits. Only the
 * commander that ran the launch sends it (nobody else knows the launch is dead).
 */
export const LOST_LAUNCH_ARG = "--lost-launch";

/** A launch of a job (`bipbip <id>`), as opposed to an end report or a kill. */
export function isLaunchMessage(msg: CommanderMessage): boolean {
  return (msg.cmd === "OARRUN" || msg.cmd === "OARRUNJOB") && msg.args.length === 0;
}

/** What bipbip_commander enqueues for a job whose launch died unreported. */
export function lostLaunchMessage(jobId: number): CommanderMessage {
  return { job_id: jobId, cmd: "OARRUN", args: [LOST_LAUNCH_ARG] };
}
