/**
 * The local launcher's side of the oarexec agent (modules/oarexec/agent.ts): connect to its socket,
 * starting the agent when none listens, and make one request per connection.
 */
import type { Config } from "../runtime/config.ts";
import { type AgentRequest, encodeAgentRequest, parseAgentExit } from "../protocol/mod.ts";
import { agentSocketPath } from "../exec/agent_path.ts";
import { spawnDetachedOarexec } from "../exec/oarexec_command.ts";
import type { LaunchResult } from "./types.ts";

const MAX_OUTPUT = 8192;
/** An agent prints `ready` within this (a Deno start-up, on a loaded host). */
const START_TIMEOUT_MS = 20_000;

/** One start at a time per process: a batch of launches must not start one agent each. */
let starting: Promise<void> | null = null;
/** After a failed start, launches go the per-job way for a while instead of retrying each. */
const RETRY_START_AFTER_MS = 30_000;
let failedStart: { at: number; error: string } | null = null;

function isNoListener(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused;
}

/** A connection to the agent, without starting one; null when none listens. */
export async function connectAgent(config: Config): Promise<Deno.UnixConn | null> {
  try {
    return await Deno.connect({ transport: "unix", path: agentSocketPath(config) });
  } catch (e) {
    if (isNoListener(e)) return null;
    throw e;
  }
}

/** A connection to the agent, starting one when needed; an error text when impossible. */
export async function connectOrStartAgent(config: Config): Promise<Deno.UnixConn | string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const conn = await connectAgent(config);
      if (conn) return conn;
    } catch (e) {
      return `cannot reach the oarexec agent: ${e}`;
    }
    if (failedStart && Date.now() - failedStart.at < RETRY_START_AFTER_MS) {
      return failedStart.error;
    }
    starting ??= startAgent(config).finally(() => (starting = null));
    try {
      await starting;
    } catch (e) {
      failedStart = { at: Date.now(), error: String((e as Error).message ?? e) };
      return failedStart.error;
    }
  }
  return "the oarexec agent does not answer";
}

async function startAgent(config: Config): Promise<void> {
  const child = spawnDetachedOarexec(config, ["--serve"]);
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes("ready\n")) return true;
    }
    return false;
  })().catch(() => false);
  const errors = new Response(child.stderr).text().catch(() => "");
  const ready = await Promise.race([
    reading,
    new Promise<false>((r) => (timer = setTimeout(() => r(false), START_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (ready) {
    // It lives on in its own session.
    child.unref();
    errors.catch(() => {});
    return;
  }
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  const status = await child.status;
  throw new Error(
    `the oarexec agent did not start (exit ${status.code}): ${(await errors).trim().slice(0, 500)}`,
  );
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.byteLength) n += await conn.write(bytes.subarray(n));
}

/**
 * Sends `req` and reads the answer's lines until `done` says so (true), the agent closes, or
 * the deadline passes. Returns the lines read and how it ended.
 */
async function exchange(
  conn: Deno.UnixConn,
  req: AgentRequest,
  timeoutMs: number,
  done: (line: string) => boolean,
): Promise<{ lines: string[]; end: "done" | "closed" | "timeout" }> {
  const lines: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await writeAll(conn, encodeAgentRequest(req));
    await conn.closeWrite();
    const decoder = new TextDecoder();
    const buf = new Uint8Array(16 * 1024);
    let pending = "";
    const deadline = new Promise<"timeout">((
      r,
    ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    for (;;) {
      const n = await Promise.race([conn.read(buf), deadline]);
      if (n === "timeout") return { lines, end: "timeout" };
      if (n === null) return { lines, end: "closed" };
      pending += decoder.decode(buf.subarray(0, n), { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) {
        if (lines.length < 1000) lines.push(line);
        if (done(line)) return { lines, end: "done" };
      }
    }
  } catch {
    return { lines, end: "closed" };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** The launch handshake through the agent, with the same result as a per-job oarexec's. */
export async function launchThroughAgent(
  conn: Deno.UnixConn,
  descriptor: string,
  rendezvous: string,
  timeoutMs: number,
): Promise<LaunchResult> {
  let exitCode: number | null = null;
  let met = false;
  const { lines, end } = await exchange(conn, { op: "RUN", descriptor }, timeoutMs, (line) => {
    if (line === rendezvous) return (met = true);
    exitCode = parseAgentExit(line);
    return exitCode !== null;
  });
  let output = lines.filter((l) => l !== rendezvous && parseAgentExit(l) === null).join("\n")
    .slice(0, MAX_OUTPUT);
  if (met) return { rendezvous: true, exitCode: null, output };
  if (end === "timeout") {
    // Closing the connection before the rendezvous stops the job in the agent.
    return { rendezvous: false, exitCode: null, output: output + "\n(no rendezvous in time)" };
  }
  if (exitCode === null) output += "\n(the oarexec agent closed the connection)";
  return { rendezvous: false, exitCode, output };
}

/** `OK` ⇒ null; otherwise the agent's error text. */
export async function signalThroughAgent(
  conn: Deno.UnixConn,
  jobId: number,
  signal: string,
  userSignal: string | undefined,
  timeoutMs: number,
): Promise<string | null> {
  const { lines, end } = await exchange(
    conn,
    { op: "SIGNAL", jobId, signal, userSignal },
    timeoutMs,
    () => true,
  );
  if (end !== "done") return `the oarexec agent did not answer (${end})`;
  return lines[0] === "OK" ? null : lines[0].replace(/^ERROR /, "");
}

/** The jobs the agent holds; null when no agent listens. */
export async function agentJobs(config: Config, timeoutMs: number): Promise<number[] | null> {
  const conn = await connectAgent(config).catch(() => null);
  if (!conn) return null;
  const { lines, end } = await exchange(conn, { op: "JOBS" }, timeoutMs, () => true);
  if (end !== "done") return null;
  return lines[0].split(" ").filter((w) => w !== "").map(Number).filter(Number.isSafeInteger);
}
