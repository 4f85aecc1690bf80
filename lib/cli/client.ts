/**
 * The user's side of every OAR command: it runs as the user, holds no database credentials, and
 * hands the command line to the command server (modules/command_server/) over its unix socket.
 * The server learns who the caller is from the kernel (the socket's peer credentials), checks
 * every rule itself and does the work; what it prints comes back here, line by line.
 *
 * Where the server is: OAR_COMMAND_SOCKET (the installed commands set it), else oar.conf's
 * COMMAND_SERVER_SOCKET when this user may read oar.conf, else the default. This module imports
 * nothing that touches the database, so a command starts as one small Deno process.
 */
import {
  COMMAND_ENV,
  COMMAND_REPLY_LINE_MAX_BYTES,
  COMMAND_REQUEST_MAX_BYTES,
  type CommandRequest,
  parseCommandReply,
} from "../protocol/commands.ts";
import { Config, ConfigError, loadConfig } from "../runtime/config.ts";
import { envGet } from "../runtime/env.ts";

export interface CommandOutcome {
  exit: number;
  result?: unknown;
}

/**
 * The command server's socket, without needing to read oar.conf, and where that path came from
 * (said when the server cannot be reached: with several oar.conf on a machine, the wrong one is
 * the usual cause).
 */
export function commandSocketPath(): { path: string; from: string } {
  const fromEnv = envGet("OAR_COMMAND_SOCKET");
  if (fromEnv) return { path: fromEnv, from: "OAR_COMMAND_SOCKET" };
  try {
    const config = loadConfig();
    return {
      path: config.str("COMMAND_SERVER_SOCKET"),
      from: config.source ? `COMMAND_SERVER_SOCKET of ${config.source}` : "the default",
    };
  } catch (e) {
    // An oar.conf this user may not read (it holds the database password): the default.
    if (e instanceof ConfigError && !/denied|NotCapable|permission/i.test(e.message)) throw e;
    return { path: new Config().str("COMMAND_SERVER_SOCKET"), from: "the default" };
  }
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/**
 * Sends one request and streams its output to this process's stdout and stderr; returns the
 * exit code (and what the server handed back). Never throws: a failure is a message and 1.
 */
export async function callCommandServer(
  command: string,
  args: string[],
  extra: { files?: Record<string, string | null>; infoType?: string | null } = {},
): Promise<CommandOutcome> {
  let path: string;
  let from: string;
  try {
    ({ path, from } = commandSocketPath());
  } catch (e) {
    console.error(`#ERROR: ${(e as Error).message}`);
    return { exit: 1 };
  }
  const env: Record<string, string> = {};
  for (const k of COMMAND_ENV) {
    const v = envGet(k);
    if (v !== undefined) env[k] = v;
  }
  let cwd = "/";
  try {
    cwd = Deno.cwd();
  } catch { /* a removed directory: the job's launching directory would not exist either */ }
  const request: CommandRequest = {
    command,
    args,
    cwd,
    env,
    files: extra.files ?? {},
    hostname: hostName(),
    infoType: extra.infoType ?? null,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(request) + "\n");
  if (bytes.length > COMMAND_REQUEST_MAX_BYTES) {
    console.error(
      `#ERROR: the request is too large (${bytes.length} bytes, at most ` +
        `${COMMAND_REQUEST_MAX_BYTES}): the script or the parameter file is too big`,
    );
    return { exit: 1 };
  }
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    console.error(
      `#ERROR: cannot reach the OAR command server at ${path} (${from}): ` +
        `${(e as Error).message} (is the OAR server running?)`,
    );
    return { exit: 1 };
  }
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    return await readReplies(conn);
  } catch (e) {
    console.error(`#ERROR: the OAR command server failed: ${(e as Error).message}`);
    return { exit: 1 };
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

async function readReplies(conn: Deno.UnixConn): Promise<CommandOutcome> {
  const decoder = new TextDecoder();
  let pending = "";
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    pending += decoder.decode(buf.subarray(0, n), { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const r = parseCommandReply(line);
      if (!r.ok) throw new Error(r.error);
      const reply = r.value;
      if ("out" in reply) console.log(reply.out);
      else if ("err" in reply) console.error(reply.err);
      else return { exit: reply.exit, result: reply.result };
    }
    if (pending.length > COMMAND_REPLY_LINE_MAX_BYTES) throw new Error("reply line too long");
  }
  throw new Error("the connection closed before the command ended");
}

/** A command that is nothing but its request: the entry of oarstat, oardel, oarnodes ... */
export async function runRemote(command: string, args: string[]): Promise<number> {
  return (await callCommandServer(command, args)).exit;
}
