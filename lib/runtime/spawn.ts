/**
 * How one module starts another: the compiled artifact in OARDIR when configured, otherwise
 * `deno run <its flags> modules/<name>/main.ts`. Either way the child runs with only the permissions
 * of lib/permissions/mod.ts and finds the same configuration file. (oarexec is started by
 * lib/exec/oarexec_command.ts, which the node program shares without the table.)
 */
import type { Config } from "./config.ts";
import { joinPath } from "./paths.ts";
import { denoRunArgs, type EntryName } from "../permissions/mod.ts";
import type { ChildCommand } from "./entry_flags.ts";

export type { ChildCommand };

export function moduleCommand(name: EntryName, config: Config, args: string[] = []): ChildCommand {
  const env: Record<string, string> = {};
  if (config.source) env.OARCONFFILE = config.source;
  const oardir = config.str("OARDIR");
  if (oardir) return { program: joinPath(oardir, name), args, env };
  return { program: Deno.execPath(), args: denoRunArgs(name, config, args), env };
}
