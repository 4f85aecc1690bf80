/**
 * Node liveness checks (docs/modules.md §12.1 `pingchecker`, docs/differences.md §2): the first
 * configured of the nmap, generic and fping commands, else a built-in check. Every method returns
 * the BAD hosts; a check that outlives 2 × TIMEOUT_SSH makes every host bad.
 *
 * Commands are argv vectors: the configured command line split into words, the host names
 * appended as separate arguments, no shell; their environment gets ENV="" and IFS="" as OAR's.
 */
import { localHosts } from "../launch/local_hosts.ts";
import type { Config } from "../runtime/config.ts";
import type { Logger } from "../runtime/log.ts";
import { runTimedCommand, splitCommandLine } from "../runtime/timed_command.ts";

export interface PingOutcome {
  /** Hosts found not responding (every host when the check timed out). */
  bad: string[];
  timedOut: boolean;
  /** The check could not be run (command missing...): nothing was decided, `bad` is empty. */
  error?: string;
}

export type PingMethod =
  | { kind: "nmap"; argv: string[] }
  | { kind: "generic"; argv: string[] }
  | { kind: "fping"; argv: string[] }
  | { kind: "builtin-local" }
  | { kind: "builtin-tcp"; port: number };

/** Which check the configuration selects (OAR's order among the methods we support). */
export function pingMethod(config: Config): PingMethod {
  const nmap = splitCommandLine(config.str("PINGCHECKER_NMAP_COMMAND"));
  if (nmap.length) return { kind: "nmap", argv: nmap };
  const generic = splitCommandLine(config.str("PINGCHECKER_GENERIC_COMMAND"));
  if (generic.length) return { kind: "generic", argv: generic };
  const fping = splitCommandLine(config.str("PINGCHECKER_FPING_COMMAND"));
  if (fping.length) return { kind: "fping", argv: fping };
  // With the local launcher the nodes are names for this very host: they are up when we are.
  if (config.str("OAREXEC_LAUNCHER").trim().toLowerCase() === "local") {
    return { kind: "builtin-local" };
  }
  return { kind: "builtin-tcp", port: sshPort(config.str("OPENSSH_CMD")) };
}

/** The port OPENSSH_CMD connects to: `-p N`, `-pN` or `-o Port=N`; 22 otherwise. */
export function sshPort(opensshCmd: string): number {
  const words = splitCommandLine(opensshCmd);
  let port = 22;
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    let v: string | undefined;
    if (w === "-p") v = words[++i];
    else if (/^-p\d+$/.test(w)) v = w.slice(2);
    else if (w === "-o" && /^port[= ]/i.test(words[i + 1] ?? "")) v = words[++i].slice(5);
    else if (/^-oport=/i.test(w)) v = w.slice(7);
    const n = Number(v);
    if (v !== undefined && Number.isInteger(n) && n > 0 && n < 65536) port = n;
  }
  return port;
}

export interface PingOptions {
  log?: Logger;
  /** Overrides 2 × TIMEOUT_SSH (milliseconds). */
  timeoutMs?: number;
}

export async function pingchecker(
  hosts: readonly string[],
  config: Config,
  opts: PingOptions = {},
): Promise<PingOutcome> {
  // Hosts run through the local launcher are names of this host: up when we are.
  const local = localHosts(config);
  const list = [...new Set(hosts.filter((h) => h !== "" && !local.has(h)))];
  if (list.length === 0) return { bad: [], timedOut: false };
  const timeoutMs = opts.timeoutMs ?? 2 * config.int("TIMEOUT_SSH") * 1000;
  const method = pingMethod(config);
  switch (method.kind) {
    case "builtin-local":
      return { bad: [], timedOut: false };
    case "builtin-tcp":
      return await tcpCheck(list, method.port, timeoutMs);
    default:
      return await commandCheck(method, list, timeoutMs, opts.log);
  }
}

/**
 * Host names are handed to the command as arguments: one starting with "-" would be read as an
 * option, so such a name is never passed and counts as bad.
 */
function safeHosts(hosts: string[]): { ok: string[]; refused: string[] } {
  const ok: string[] = [];
  const refused: string[] = [];
  for (const h of hosts) (h.startsWith("-") || /\s/.test(h) ? refused : ok).push(h);
  return { ok, refused };
}

async function commandCheck(
  method: Extract<PingMethod, { argv: string[] }>,
  hosts: string[],
  timeoutMs: number,
  log?: Logger,
): Promise<PingOutcome> {
  const { ok, refused } = safeHosts(hosts);
  if (refused.length) log?.warn("host names refused by the node check: {refused}", { refused });
  if (ok.length === 0) return { bad: refused, timedOut: false };
  const argv = method.kind === "nmap"
    ? [...method.argv, "-oG", "-", ...ok]
    : method.kind === "fping"
    ? [...method.argv, "-u", ...ok]
    : [...method.argv, ...ok];
  const r = await runTimedCommand(argv, { timeoutMs, env: { ENV: "", IFS: "" } });
  if (r.kind === "failed") {
    log?.error("node check {kind} could not run: {error}", { kind: method.kind, error: r.error });
    return { bad: [], timedOut: false, error: r.error };
  }
  if (r.kind === "timeout") {
    log?.error("node check {kind} timed out after {ms} ms: every node is bad", {
      kind: method.kind,
      ms: timeoutMs,
    });
    return { bad: [...hosts], timedOut: true };
  }
  const lines = r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const wanted = new Set(ok);
  let bad: Set<string>;
  if (method.kind === "nmap") {
    // Good hosts are reported: `Host: <ip> (<name>) ... Ports: 22/open/...`.
    const good = new Set<string>();
    for (const l of lines) {
      const m = /^Host:\s+(\S+)\s+\(([^)]*)\).*\/open\//.exec(l);
      if (m) good.add(m[1]).add(m[2]);
    }
    bad = new Set(ok.filter((h) => !good.has(h)));
  } else if (method.kind === "fping") {
    // `fping -u` prints the unreachable hosts, one per line, possibly with a comment.
    bad = new Set(lines.map((l) => l.split(/\s+/)[0]).filter((h) => wanted.has(h)));
  } else {
    // The generic command prints the bad hosts, one bare name per line.
    bad = new Set(lines.filter((l) => wanted.has(l)));
  }
  return { bad: [...ok.filter((h) => bad.has(h)), ...refused], timedOut: false };
}

/** The built-in check: a TCP connection to each node's ssh port. */
async function tcpCheck(hosts: string[], port: number, timeoutMs: number): Promise<PingOutcome> {
  const overall = AbortSignal.timeout(timeoutMs);
  const results = await Promise.all(hosts.map(async (h) => {
    try {
      const conn = await Deno.connect({ hostname: h, port, signal: overall });
      conn.close();
      return true;
    } catch {
      return false;
    }
  }));
  if (overall.aborted && results.some((ok) => !ok)) {
    return { bad: [...hosts], timedOut: true };
  }
  return { bad: hosts.filter((_, i) => !results[i]), timedOut: false };
}
