/**
 * The command that runs oarexec, computed without the permission table (which the node program
 * must not carry: tools/check_imports.ts): the artifact in OARDIR when configured, otherwise
 * `deno run <oarexec's flags> modules/oarexec/main.ts`. lib/permissions/mod.ts grants oarexec
 * the same flags, from the same functions (tests/deploy_test.ts checks the two agree).
 */
import type { Config } from "../runtime/config.ts";
import { joinPath, projectRoot } from "../runtime/paths.ts";
import {
  baseFlagSet,
  type ChildCommand,
  type FlagSet,
  serverPortAddress,
} from "../runtime/entry_flags.ts";
import { agentSocketPath } from "./agent_path.ts";

/** oarexec's entry, relative to the project root. */
export const OAREXEC_ENTRY = "modules/oarexec/main.ts";

/** The table's `node_execution` need: what running users' jobs on a node takes. */
export function addNodeExecutionFlags(f: FlagSet, config: Config): void {
  // oarexec runs users' commands, as their users, wherever their files are.
  for (const k of ["read", "write", "run", "env", "sys"]) f.all(k);
  // The local agent's socket (modules/oarexec/agent.ts).
  f.add("net", `unix:${agentSocketPath(config)}`);
}

/** oarexec's Deno flags: the table's needs `node_execution` and `tcp_server_port`. */
export function oarexecFlags(config: Config): string[] {
  const f = baseFlagSet(config);
  addNodeExecutionFlags(f, config);
  f.add("net", serverPortAddress(config));
  return f.render();
}

/** How to run oarexec with `args`, as lib/runtime/spawn.ts's moduleCommand("oarexec") would. */
export function oarexecCommand(config: Config, args: string[] = []): ChildCommand {
  const env: Record<string, string> = {};
  if (config.source) env.OARCONFFILE = config.source;
  const oardir = config.str("OARDIR");
  if (oardir) return { program: joinPath(oardir, "oarexec"), args, env };
  const entry = joinPath(projectRoot, OAREXEC_ENTRY);
  return {
    program: Deno.execPath(),
    args: ["run", "--quiet", "--no-prompt", ...oarexecFlags(config), entry, ...args],
    env,
  };
}

/**
 * `oarexec --detached` in a session of its own (through `setsid`), so that it outlives the
 * process that started it (bipbip with the local launcher, or oarexec's own relay under ssh),
 * with stdin for the descriptor and stdout for the rendezvous line.
 */
export function spawnDetachedOarexec(
  config: Config,
  args: string[] = ["--detached"],
): Deno.ChildProcess {
  const cmd = oarexecCommand(config, args);
  return new Deno.Command("setsid", {
    args: [cmd.program, ...cmd.args],
    env: cmd.env,
    // The agent (`--serve`) takes its requests on its socket.
    stdin: args.includes("--serve") ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
