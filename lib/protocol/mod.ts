/**
 * Every message oar-deno sends or receives, in one place (docs/architecture.md §2).
 *
 * - almighty commands: JSON `{"cmd": ...}` over ZeroMQ (docs/modules.md §1.3, §13.4);
 * - bipbip_commander messages: JSON `{"job_id", "cmd", "args"}` (docs/modules.md §3);
 * - greta messages: JSON `{"cmd", "nodes"}` (docs/modules.md §10.1);
 * - legacy text lines on SERVER_PORT: `OAREXEC_<id>_<exit>_<status>_<challenge>`,
 *   `OARRUNJOB_<id>`, `LEONEXTERMINATE_<id>`, or a bare almighty command (docs/modules.md §2);
 * - interactive notifications written to oarsub's socket (docs/modules.md §4.3, §11);
 * - the oarexec job descriptor (JSON; both ends are ours, docs/differences.md).
 *
 * Parsers never throw: they return `{ ok: true, value }` or `{ ok: false, error }`.
 * Encoders produce the bytes OAR 3 produces (Python's `json.dumps` layout), so OAR's own tools
 * and ours can talk to each other.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** Messages larger than this are refused before parsing: no legitimate one comes close. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Python-compatible JSON

/**
 * JSON text laid out as Python's `json.dumps` does by default (`", "` and `": "` separators,
 * non-ASCII escaped), which is what pyzmq's `send_json` puts on the wire in OAR 3.
 */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("pyJson: non-finite number");
    return String(value);
  }
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
    );
  }
  if (Array.isArray(value)) return "[" + value.map(pyJson).join(", ") + "]";
  if (typeof value === "object") {
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => pyJson(k) + ": " + pyJson(v));
    return "{" + parts.join(", ") + "}";
  }
  throw new TypeError(`pyJson: cannot encode ${typeof value}`);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes bytes (or passes text through) and parses a JSON object; never throws. */
function parseJsonObject(input: Uint8Array | string): Parsed<Record<string, unknown>> {
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    if (input.byteLength > MAX_MESSAGE_BYTES) {
      return fail(`message too large (${input.byteLength} bytes)`);
    }
    try {
      text = decoder.decode(input);
    } catch {
      return fail("message is not valid UTF-8");
    }
  }
  if (text.length > MAX_MESSAGE_BYTES) return fail(`message too large (${text.length} chars)`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return fail(`message is not JSON: ${(e as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return fail("message is not a JSON object");
  }
  return ok(data as Record<string, unknown>);
}

function isJobId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

// ---------------------------------------------------------------------------------------------
// almighty commands

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

// ---------------------------------------------------------------------------------------------
// bipbip_commander messages

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

// ---------------------------------------------------------------------------------------------
// greta messages

export const GRETA_COMMANDS = ["CHECK", "HALT", "WAKEUP"] as const;
export type GretaCommand = typeof GRETA_COMMANDS[number];

export interface GretaMessage {
  cmd: GretaCommand;
  nodes: string[];
}

export function encodeGretaMessage(msg: GretaMessage): string {
  return msg.cmd === "CHECK" && msg.nodes.length === 0
    ? pyJson({ cmd: "CHECK" })
    : pyJson({ cmd: msg.cmd, nodes: msg.nodes });
}

const HOSTNAME_RE = /^[A-Za-z0-9_.:-]{1,255}$/;

/** A host name as it appears in `network_address`; refuses shell and SQL metacharacters. */
export function isValidHostname(s: string): boolean {
  return HOSTNAME_RE.test(s);
}

/**
 * Greta's input. As in OAR, an unknown command without nodes is treated as CHECK; an unknown
 * command with nodes is an error (OAR's greta exits on it; ours logs and drops it).
 */
export function parseGretaMessage(input: Uint8Array | string): Parsed<GretaMessage> {
  const r = parseJsonObject(input);
  if (!r.ok) return r;
  const { cmd, nodes } = r.value;
  let nodeList: string[] = [];
  if (nodes !== undefined && nodes !== null) {
    if (!isStringArray(nodes)) return fail('"nodes" must be a list of host names');
    const bad = nodes.find((n) => !isValidHostname(n));
    if (bad !== undefined) return fail(`invalid host name ${JSON.stringify(bad).slice(0, 80)}`);
    nodeList = nodes;
  }
  if (typeof cmd === "string" && (GRETA_COMMANDS as readonly string[]).includes(cmd)) {
    return ok({ cmd: cmd as GretaCommand, nodes: nodeList });
  }
  if (nodeList.length === 0) return ok({ cmd: "CHECK", nodes: [] });
  return fail(`unknown greta command ${JSON.stringify(cmd)?.slice(0, 40)} with nodes`);
}

// ---------------------------------------------------------------------------------------------
// legacy text lines (SERVER_PORT)

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
const MAX_LINE = 4096;

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

/**
 * Splits a TCP byte stream into lines: a connection may carry several messages and a message
 * may arrive in several packets (docs/differences.md). Keeps at most `maxLine` bytes of a pending
 * line; a longer line is reported as an error and skipped up to its newline.
 */
export class LineSplitter {
  #pending = "";
  #overflow = false;
  readonly #decoder = new TextDecoder("utf-8", { fatal: false });
  constructor(readonly maxLine = MAX_LINE) {}

  /** Feeds bytes; returns the complete lines (without newline) and errors found. */
  push(chunk: Uint8Array): { lines: string[]; errors: string[] } {
    const text = this.#pending + this.#decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    this.#pending = parts.pop() ?? "";
    const lines: string[] = [];
    const errors: string[] = [];
    for (const p of parts) {
      if (this.#overflow) {
        this.#overflow = false;
        errors.push("line too long, dropped");
        continue;
      }
      lines.push(p.replace(/\r$/, ""));
    }
    if (this.#pending.length > this.maxLine) {
      this.#pending = "";
      this.#overflow = true;
    }
    return { lines, errors };
  }

  /** At end of stream: the last line if it had no newline. */
  end(): string[] {
    const rest = this.#pending + this.#decoder.decode();
    this.#pending = "";
    if (this.#overflow) return [];
    return rest.trim() === "" ? [] : [rest];
  }
}

/**
 * The lines of a byte stream (a child's stdout, our stdin), split as LineSplitter does; lines
 * longer than `maxLine` are skipped. Ends with the stream; returning early cancels it.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxLine = MAX_LINE,
): AsyncGenerator<string> {
  const splitter = new LineSplitter(maxLine);
  try {
    for await (const chunk of stream) yield* splitter.push(chunk).lines;
  } catch { /* the stream broke: what was read is all there is */ }
  yield* splitter.end();
}

// ---------------------------------------------------------------------------------------------
// interactive notifications (written to oarsub's socket, `info_type` = host:port)

export const InteractiveMessages = {
  starting: "Starting...",
  goodJob: "GOOD JOB",
  badJob: "BAD JOB",
  goodReservation: "GOOD RESERVATION",
  jobKilled: "JOB_KILLED",
  /** `[<now>] Start prediction: <start> (<message>)`, times as OAR's SQL date strings. */
  startPrediction: (now: string, start: string, message: string) =>
    `[${now}] Start prediction: ${start} (${message})`,
  error: (text: string) => `ERROR: ${text}`,
} as const;

/** `info_type` is `host:port`; anything else is refused (it is user-controlled data). */
export function parseInfoType(
  info: string | null | undefined,
): Parsed<{ host: string; port: number }> {
  if (!info) return fail("no info_type");
  const i = info.lastIndexOf(":");
  if (i <= 0) return fail(`info_type ${JSON.stringify(info).slice(0, 80)} is not host:port`);
  const host = info.slice(0, i);
  const port = Number(info.slice(i + 1));
  if (!isValidHostname(host)) return fail(`bad host in info_type`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail("bad port in info_type");
  return ok({ host, port });
}

// ---------------------------------------------------------------------------------------------
// oarexec descriptor (bipbip → oarexec, JSON on stdin; docs/modules.md §4.3 step 7)

export interface OarexecDescriptor {
  job_id: number;
  array_id: number;
  array_index: number;
  stdout_file: string;
  stderr_file: string;
  launching_directory: string;
  job_env: string | null;
  node_file_db_fields: string;
  node_file_db_fields_distinct_values: string;
  user: string;
  job_user: string;
  types: Record<string, unknown>;
  name: string | null;
  project: string;
  reservation: string;
  walltime_seconds: number;
  command: string;
  challenge: string;
  almighty_hostname: string;
  almighty_port: number;
  checkpoint_signal: number;
  debug_mode: number;
  mode: "PASSIVE" | "INTERACTIVE";
  pro_epi_timeout: number;
  prologue: string;
  epilogue: string;
  tmp_directory: string;
  detach_oarexec: number;
  cpuset_full_path: string;
  /** Every column of each assigned resource. */
  resources: Record<string, unknown>[];
  /**
   * Seconds oarexec waits for the proxy's acknowledgement of its report before sending it
   * again (OAREXEC_REPORT_ACK_TIMEOUT); absent: REPORT_ACK_TIMEOUT_DEFAULT.
   */
  report_ack_timeout?: number;
}

const DESCRIPTOR_STRINGS = [
  "stdout_file",
  "stderr_file",
  "launching_directory",
  "node_file_db_fields",
  "node_file_db_fields_distinct_values",
  "user",
  "job_user",
  "project",
  "reservation",
  "command",
  "challenge",
  "almighty_hostname",
  "prologue",
  "epilogue",
  "tmp_directory",
  "cpuset_full_path",
] as const;
const DESCRIPTOR_INTS = [
  "job_id",
  "array_id",
  "array_index",
  "walltime_seconds",
  "almighty_port",
  "checkpoint_signal",
  "debug_mode",
  "pro_epi_timeout",
  "detach_oarexec",
] as const;

export function encodeOarexecDescriptor(d: OarexecDescriptor): string {
  return JSON.stringify(d);
}

/** Validates a descriptor read by oarexec; a bad one is oarexec's exit 31. */
export function parseOarexecDescriptor(input: Uint8Array | string): Parsed<OarexecDescriptor> {
  const r = parseJsonObject(input);
  if (!r.ok) return r;
  const d = r.value;
  for (const k of DESCRIPTOR_INTS) {
    if (typeof d[k] !== "number" || !Number.isSafeInteger(d[k])) {
      return fail(`descriptor: "${k}" must be an integer`);
    }
  }
  for (const k of DESCRIPTOR_STRINGS) {
    if (typeof d[k] !== "string") return fail(`descriptor: "${k}" must be a string`);
  }
  if (d.mode !== "PASSIVE" && d.mode !== "INTERACTIVE") {
    return fail('descriptor: "mode" must be PASSIVE or INTERACTIVE');
  }
  if (d.job_env !== null && typeof d.job_env !== "string") {
    return fail('descriptor: "job_env" must be a string or null');
  }
  if (d.name !== null && typeof d.name !== "string") {
    return fail('descriptor: "name" must be a string or null');
  }
  if (d.types === null || typeof d.types !== "object" || Array.isArray(d.types)) {
    return fail('descriptor: "types" must be an object');
  }
  if (!Array.isArray(d.resources) || !d.resources.every((x) => x && typeof x === "object")) {
    return fail('descriptor: "resources" must be a list of objects');
  }
  const ackTimeout = d.report_ack_timeout;
  if (
    ackTimeout !== undefined &&
    !(typeof ackTimeout === "number" && Number.isSafeInteger(ackTimeout) && ackTimeout > 0)
  ) return fail('descriptor: "report_ack_timeout" must be a positive integer');
  return ok(d as unknown as OarexecDescriptor);
}

// ---------------------------------------------------------------------------------------------
// job types (docs/differences.md §16: one parser)

export type JobTypes = Record<string, string | true | Record<string, number>>;

/** `k=v` ⇒ "v", bare ⇒ true, `token:NAME=N` ⇒ `{token: {NAME: N}}`. */
export function parseJobTypes(types: readonly string[]): JobTypes {
  const out: JobTypes = {};
  for (const t of types) {
    const tok = /^token:([^=]+)=(\d+)$/.exec(t);
    if (tok) {
      const tokens = (typeof out.token === "object" ? out.token : {}) as Record<string, number>;
      tokens[tok[1]] = Number(tok[2]);
      out.token = tokens;
      continue;
    }
    const eq = t.indexOf("=");
    if (eq > 0) out[t.slice(0, eq)] = t.slice(eq + 1);
    else if (t !== "") out[t] = true;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The local oarexec agent (modules/oarexec/agent.ts): one request per unix-socket connection, the
// client's whole stream (it half-closes after writing). `RUN` is followed by the job descriptor;
// the agent answers with oarexec's log lines, then the rendezvous line (the job runs) or
// `EXIT <code>` (oarexec's early exit code). `SIGNAL` answers `OK` or `ERROR <text>`; `JOBS`
// answers the ids of the jobs it holds, space-separated, on one line.

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

// ---------------------------------------------------------------------------------------------
// almighty and the one-shot modules it keeps ready (modules/almighty/standby.ts, lib/runtime/oneshot.ts):
// almighty writes `go` on the module's stdin for each run; the module answers at once with a
// `running` line (it took the go), and at the end with the run's exit code in a `done` line, both
// on its stdout, then waits for the next `go` or for the end of its input.

/** Starts one run of a standby module. */
export const STANDBY_GO = "go";

export function encodeStandbyGo(): string {
  return `${STANDBY_GO}\n`;
}

/**
 * A standby module's lines to almighty. Each starts on a line of its own: whatever the module
 * printed before without a newline cannot hide it.
 */
export function encodeStandbyRunning(): string {
  return "\nOAR_STANDBY_RUNNING\n";
}

/**
 * The exit code of the run (what a process exit would have given: 0-255, and 1 for what is not
 * an integer), and `last` when the process leaves after it instead of waiting for another `go`.
 */
export function encodeStandbyDone(code: number, last = false): string {
  const exit = Number.isInteger(code) ? code & 255 : 1;
  return `\nOAR_STANDBY_DONE ${exit}${last ? " last" : ""}\n`;
}

export type StandbyLine =
  | { kind: "running" }
  | { kind: "done"; code: number; more: boolean };

/** A standby's `running` or `done` line, else null (other output of the module). */
export function parseStandbyLine(line: string): StandbyLine | null {
  if (line === "OAR_STANDBY_RUNNING") return { kind: "running" };
  const m = /^OAR_STANDBY_DONE (\d{1,3})( last)?$/.exec(line);
  if (!m || Number(m[1]) > 255) return null;
  return { kind: "done", code: Number(m[1]), more: m[2] === undefined };
}

// ---------------------------------------------------------------------------------------------
// acknowledged oarexec reports (issue 11): oarexec keeps its report's connection open until the
// proxy writes `OK`; the proxy tags the commander message with a random token, and
// bipbip_commander sends `OARACK_<token>` to SERVER_PORT once bipbip has handled the report.

/** What the proxy writes back to oarexec once its report was handled. */
export const REPORT_ACK = "OK";
/** Seconds oarexec waits for REPORT_ACK when the descriptor does not say. */
export const REPORT_ACK_TIMEOUT_DEFAULT = 120;

const ACK_TOKEN_RE = /^[0-9a-f]{32}$/;

export function isAckToken(s: unknown): s is string {
  return typeof s === "string" && ACK_TOKEN_RE.test(s);
}

/** 128 random bits: a client cannot guess another's token. */
export function newAckToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function encodeAckLine(token: string): string {
  return `OARACK_${token}\n`;
}

/** The token of an `OARACK_<token>` line, else null (the line is something else). */
export function parseAckLine(line: string): string | null {
  const m = /^OARACK_([0-9a-f]{32})\s*$/.exec(line);
  return m ? m[1] : null;
}
