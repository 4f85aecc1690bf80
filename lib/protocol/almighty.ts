/**
 * almighty commands: JSON `{"cmd": ...}` over ZeroMQ (docs/modules.md §1.3, §13.4), from the
 * appendice proxy, the CLI and the modules.
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

/** Commands almighty acts on (docs/modules.md §1.4). Anything else is logged and dropped by almighty. */
export const ALMIGHTY_COMMANDS = [
  "Qsub",
  "Qsub -I",
  "Term",
  "BipBip",
  "Scheduling",
  "Qresume",
  "Walltime",
  "Qdel",
  "Villains",
  "Finaud",
  "Time",
  "ChState",
] as const;
export type AlmightyCommand = typeof ALMIGHTY_COMMANDS[number];

const ALMIGHTY_SET: ReadonlySet<string> = new Set(ALMIGHTY_COMMANDS);

export function isAlmightyCommand(s: string): s is AlmightyCommand {
  return ALMIGHTY_SET.has(s);
}

/** A command as received: `cmd` may be unknown (almighty logs it); job_id/args are ignored. */
export interface AlmightyMessage {
  cmd: string;
  job_id?: number;
  args?: string[];
}

export function encodeAlmightyMessage(msg: AlmightyMessage): string {
  return pyJson(msg);
}

export function parseAlmightyMessage(input: Uint8Array | string): Parsed<AlmightyMessage> {
  const r = parseJsonObject(input);
  if (!r.ok) return r;
  const { cmd, job_id, args } = r.value;
  if (typeof cmd !== "string" || cmd === "") return fail('almighty message has no "cmd" string');
  const msg: AlmightyMessage = { cmd };
  if (job_id !== undefined && job_id !== null) {
    if (!isJobId(job_id)) return fail('"job_id" must be a non-negative integer');
    msg.job_id = job_id;
  }
  if (args !== undefined && args !== null) {
    if (!isStringArray(args)) return fail('"args" must be a list of strings');
    msg.args = args;
  }
  return ok(msg);
}
