/**
 * How one module starts another: the compiled artifact in OARDIR when configured, otherwise
 * `deno run <its flags> modules/<name>/main.ts`. Either way the child runs with only the permissions
 * of lib/permissions/mod.ts and finds the same configuration file.
 */
import type { Config } from "./config.ts";
import { joinPath } from "./paths.ts";
import { denoRunArgs, type EntryName } from "../permissions/mod.ts";

export interface ChildCommand {
  program: string;
  args: string[];
  env: Record<string, string>;
}

export function moduleCommand(name: EntryName, config: Config, args: string[] = []): ChildCommand {
  const env: Record<string, string> = {};
  if (config.source) env.OARCONFFILE = config.source;
  const oardir = config.str("OARDIR");
  if (oardir) return { program: joinPath(oardir, name), args, env };
  return { program: Deno.execPath(), args: denoRunArgs(name, config, args), env };
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
  const cmd = moduleCommand("oarexec", config, args);
  return new Deno.Command("setsid", {
    args: [cmd.program, ...cmd.args],
    env: cmd.env,
    // The agent (`--serve`) takes its requests on its socket.
    stdin: args.includes("--serve") ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
