/**
 * Every message oar-deno sends or receives (docs/architecture.md §2), one file per
 * family, all re-exported here so that importers need only this module:
 *
 * - almighty.ts: almighty commands, JSON `{"cmd": ...}` over ZeroMQ (docs/modules.md §1.3, §13.4);
 * - commander.ts: bipbip_commander messages, JSON `{"job_id", "cmd", "args"}` (docs/modules.md §3);
 * - greta.ts: greta messages, JSON `{"cmd", "nodes"}` (docs/modules.md §10.1);
 * - legacy_lines.ts: text lines on SERVER_PORT: `OAREXEC_<id>_<exit>_<status>_<challenge>`,
 *   `OARRUNJOB_<id>`, `LEONEXTERMINATE_<id>`, or a bare almighty command (docs/modules.md §2);
 * - report_ack.ts: the acknowledgement of oarexec's report (issue 11);
 * - interactive.ts: notifications written to oarsub's socket (docs/modules.md §4.3, §11);
 * - oarexec_descriptor.ts: the oarexec job descriptor (JSON; both ends are ours,
 *   docs/differences.md);
 * - oarexec_agent.ts: requests to the local oarexec agent;
 * - standby.ts: almighty's `go` to a standby one-shot module and its answers;
 * - job_types.ts: the job types parser;
 * - commands.ts: the user commands' requests to the command server and its replies;
 * - lines.ts: lines out of byte streams; common.ts: the parse result, limits, Python JSON.
 *
 * Parsers never throw: they return `{ ok: true, value }` or `{ ok: false, error }`.
 * Encoders produce the bytes OAR 3 produces (Python's `json.dumps` layout), so OAR's own tools
 * and ours can talk to each other.
 */

export { isValidHostname, MAX_MESSAGE_BYTES, type Parsed, pyJson } from "./common.ts";
export * from "./almighty.ts";
export * from "./commander.ts";
export * from "./greta.ts";
export * from "./legacy_lines.ts";
export * from "./report_ack.ts";
export * from "./interactive.ts";
export * from "./oarexec_descriptor.ts";
export * from "./oarexec_agent.ts";
export * from "./standby.ts";
export * from "./job_types.ts";
export * from "./lines.ts";
export * from "./commands.ts";
