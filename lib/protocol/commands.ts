/**
 * The user commands' requests to the command server (modules/command_server/), over its unix
 * socket, and its replies. The caller's identity is not in the request: the server takes it from
 * the kernel (the socket's peer credentials), so nothing here can make it act as another user.
 *
 * One request per connection, one JSON line; the replies are JSON lines, in order: output lines
 * (`{"out": ...}` for stdout, `{"err": ...}` for stderr), then one `{"exit": N, "result": ...}`.
 * The same limits apply on both sides: the client refuses to send what the server would refuse.
 */
import { fail, isValidHostname, ok, type Parsed } from "./common.ts";

/** A request's largest size: a job script scanned by -S, or an array's parameter file. */
export const COMMAND_REQUEST_MAX_BYTES = 8 * 1024 * 1024;
/** A reply line's largest size (one oarstat -J line holds every job it shows). */
export const COMMAND_REPLY_LINE_MAX_BYTES = 64 * 1024 * 1024;
/** Arguments and environment values the server accepts, in number. */
const MAX_ARGS = 4096;
/** Environment variables a command passes on: only those that change what it does. */
export const COMMAND_ENV = ["OARDO_USER", "TZ"] as const;

export interface CommandRequest {
  /** The command (oarstat, oarsub ...) or one of oarsub's follow-ups (oarsub:status ...). */
  command: string;
  args: string[];
  /** The caller's working directory (oarsub's launching directory). */
  cwd: string;
  /** Only COMMAND_ENV names. */
  env: Record<string, string>;
  /** Files the command reads with the caller's rights, by the path given on the command line. */
  files: Record<string, string | null>;
  /** The caller's host name, and the host:port oarsub -I/-r listens on, if any. */
  hostname: string;
  infoType: string | null;
}

export type CommandReply =
  | { out: string }
  | { err: string }
  | { exit: number; result?: unknown };

const COMMAND_RE = /^[a-z][a-z_-]{0,30}(:[a-z]{1,20})?$/;

function stringRecord(
  v: unknown,
  what: string,
  allowNull: boolean,
): Parsed<Record<string, string>> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return fail(`${what} is not an object`);
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string" && !(allowNull && x === null)) {
      return fail(`${what}.${k.slice(0, 40)} is not a string`);
    }
    out[k] = x as string;
  }
  return ok(out);
}

/** Checks a request line as received; never throws. */
export function parseCommandRequest(text: string): Parsed<CommandRequest> {
  if (text.length > COMMAND_REQUEST_MAX_BYTES) return fail("request too large");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail("request is not JSON");
  }
  if (typeof v !== "object" || v === null) return fail("request is not an object");
  const r = v as Record<string, unknown>;
  if (typeof r.command !== "string" || !COMMAND_RE.test(r.command)) return fail("bad command");
  if (
    !Array.isArray(r.args) || r.args.length > MAX_ARGS ||
    !r.args.every((a) => typeof a === "string")
  ) {
    return fail("bad args");
  }
  if (typeof r.cwd !== "string" || !r.cwd.startsWith("/")) return fail("bad cwd");
  // It becomes the job's info_type: a host name, nothing else.
  if (typeof r.hostname !== "string" || !isValidHostname(r.hostname)) return fail("bad hostname");
  if (r.infoType !== null && typeof r.infoType !== "string") return fail("bad infoType");
  const env = stringRecord(r.env ?? {}, "env", false);
  if (!env.ok) return env;
  for (const k of Object.keys(env.value)) {
    if (!(COMMAND_ENV as readonly string[]).includes(k)) delete env.value[k];
  }
  const files = stringRecord(r.files ?? {}, "files", true);
  if (!files.ok) return files;
  return ok({
    command: r.command,
    args: r.args as string[],
    cwd: r.cwd,
    env: env.value,
    files: files.value,
    hostname: r.hostname,
    infoType: (r.infoType as string | null) ?? null,
  });
}

/** Checks a reply line as received by a command; never throws. */
export function parseCommandReply(text: string): Parsed<CommandReply> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail("reply is not JSON");
  }
  if (typeof v !== "object" || v === null) return fail("reply is not an object");
  const r = v as Record<string, unknown>;
  if (typeof r.out === "string") return ok({ out: r.out });
  if (typeof r.err === "string") return ok({ err: r.err });
  if (typeof r.exit === "number" && Number.isInteger(r.exit)) {
    return ok({ exit: r.exit & 0xff, result: r.result });
  }
  return fail("unknown reply");
}
