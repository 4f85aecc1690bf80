/**
 * Legacy text lines on SERVER_PORT (docs/modules.md §2):
 * `OAREXEC_<id>_<exit>_<status>_<challenge>`, `OARRUNJOB_<id>`, `LEONEXTERMINATE_<id>`, or a bare
 * almighty command; the appendice proxy routes each to bipbip_commander or almighty.
 */
import { fail, MAX_LINE, ok, type Parsed } from "./common.ts";
import type { AlmightyCommand, AlmightyMessage } from "./almighty.ts";
import type { CommanderCommand, CommanderMessage } from "./commander.ts";

/** oarexec's report: `OAREXEC_<id>_<oarexec exit>_<script exit|N>_<challenge>`. */
export interface OarexecReport {
  jobId: number;
  oarexecExit: number;
  /** Raw wait status of the user command, or null for `N`. */
  scriptExit: number | null;
  challenge: string;
}

export function encodeOarexecReport(r: OarexecReport): string {
  const script = r.scriptExit === null ? "N" : String(r.scriptExit);
  return `OAREXEC_${r.jobId}_${r.oarexecExit}_${script}_${r.challenge}\n`;
}

/** Reads the args of an OAREXEC commander message back into a report. */
export function parseOarexecArgs(jobId: number, args: string[]): Parsed<OarexecReport> {
  if (args.length < 3) return fail(`OAREXEC for job ${jobId} needs 3 args, got ${args.length}`);
  const [exit, script, ...rest] = args;
  if (!/^\d{1,9}$/.test(exit)) return fail(`bad oarexec exit code ${JSON.stringify(exit)}`);
  if (script !== "N" && !/^\d{1,9}$/.test(script)) {
    return fail(`bad script exit ${JSON.stringify(script)}`);
  }
  return ok({
    jobId,
    oarexecExit: Number(exit),
    scriptExit: script === "N" ? null : Number(script),
    // A challenge could itself contain '_': OAR splits on '_', so rejoin what follows.
    challenge: rest.join("_"),
  });
}

export type LegacyLine =
  | { kind: "commander"; message: CommanderMessage }
  | { kind: "almighty"; message: AlmightyMessage };

const LEGACY_JOB_RE = /(OAREXEC|OARRUNJOB|LEONEXTERMINATE)_(\d+)(.*)/;

/**
 * Routes one text line received on SERVER_PORT (docs/modules.md §2): a job line goes to
 * bipbip_commander, anything else to almighty as `{"cmd": <line>}`. Empty lines, control characters
 * and oversized lines are refused.
 */
export function parseLegacyLine(raw: string): Parsed<LegacyLine> {
  const line = raw.replace(/\s+$/, "");
  if (line === "") return fail("empty line");
  if (line.length > MAX_LINE) return fail(`line too long (${line.length} chars)`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(line)) return fail("line has control characters");
  const m = LEGACY_JOB_RE.exec(line);
  if (m) {
    const jobId = Number(m[2]);
    if (!Number.isSafeInteger(jobId)) return fail("job id out of range");
    const args = m[3] === "" ? [] : m[3].split("_").slice(m[3].startsWith("_") ? 1 : 0);
    return ok({
      kind: "commander",
      message: { job_id: jobId, cmd: m[1] as CommanderCommand, args },
    });
  }
  return ok({ kind: "almighty", message: { cmd: line } });
}

/** `OARRUNJOB_<id>` and `LEONEXTERMINATE_<id>` as OAR 2 tools send them. */
export function encodeJobLine(cmd: "OARRUNJOB" | "LEONEXTERMINATE", jobId: number): string {
  return `${cmd}_${jobId}\n`;
}

/** A bare almighty command as a text line (what oarsub/oardel send to SERVER_PORT). */
export function encodeCommandLine(cmd: AlmightyCommand): string {
  return `${cmd}\n`;
}
