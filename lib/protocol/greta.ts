/** greta messages: JSON `{"cmd", "nodes"}` (docs/modules.md §10.1). */
import {
  fail,
  isStringArray,
  isValidHostname,
  ok,
  type Parsed,
  parseJsonObject,
  pyJson,
} from "./common.ts";

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
