/**
 * Where the local oarexec agent listens (modules/oarexec/agent.ts). Its own file, free of imports,
 * because the permissions table needs it and is loaded by every entry's launcher.
 */
import type { Config } from "../runtime/config.ts";
import { joinPath } from "../runtime/paths.ts";

export const AGENT_SOCKET_NAME = "oarexec_agent.sock";

export function agentSocketPath(config: Config): string {
  return joinPath(config.str("OAREXEC_DIRECTORY"), AGENT_SOCKET_NAME);
}
