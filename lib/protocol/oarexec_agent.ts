/**
 * The local oarexec agent (modules/oarexec/agent.ts): one request per unix-socket connection, the
 * client's whole stream (it half-closes after writing). `RUN` is followed by the job descriptor;
 * the agent answers with oarexec's log lines, then the rendezvous line (the job runs) or
 * `EXIT <code>` (oarexec's early exit code). `SIGNAL` answers `OK` or `ERROR <text>`; `JOBS`
 * answers the ids of the jobs it holds, space-separated, on one line.
 */
import { fail, ok, type Parsed } from "./common.ts";

export type AgentRequest =
  | { op: "RUN"; descriptor: string }
  | { op: "SIGNAL"; jobId: number; signal: string; userSignal?: string }
  | { op: "JOBS" };

const AGENT_SIGNAL_RE = /^(SIG)?[A-Z0-9]{1,10}$/;

export function encodeAgentRequest(r: AgentRequest): string {
  switch (r.op) {
    case "RUN":
      return `RUN\n${r.descriptor}`;
    case "SIGNAL":
      return `SIGNAL ${r.jobId} ${r.signal}${r.userSignal ? ` ${r.userSignal}` : ""}\n`;
    case "JOBS":
      return "JOBS\n";
  }
}

export function parseAgentRequest(text: string): Parsed<AgentRequest> {
  const nl = text.indexOf("\n");
  const head = (nl < 0 ? text : text.slice(0, nl)).trim();
  if (head === "RUN") return ok({ op: "RUN", descriptor: nl < 0 ? "" : text.slice(nl + 1) });
  if (head === "JOBS") return ok({ op: "JOBS" });
  const words = head.split(" ");
  if (words[0] === "SIGNAL" && (words.length === 3 || words.length === 4)) {
    const jobId = Number(words[1]);
    if (!Number.isSafeInteger(jobId) || jobId <= 0) return fail(`bad job id ${words[1]}`);
    if (!words.slice(2).every((w) => AGENT_SIGNAL_RE.test(w))) return fail("bad signal name");
    return ok({ op: "SIGNAL", jobId, signal: words[2], userSignal: words[3] });
  }
  return fail(`unknown agent request ${JSON.stringify(head.slice(0, 40))}`);
}

/** The agent's last line when a job ended before its rendezvous. */
export function encodeAgentExit(code: number): string {
  return `EXIT ${code}\n`;
}

/** The code of an `EXIT <code>` line, else null. */
export function parseAgentExit(line: string): number | null {
  const m = /^EXIT (\d{1,3})$/.exec(line);
  return m ? Number(m[1]) : null;
}
