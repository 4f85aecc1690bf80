/**
 * `deno task <module|command> [args]`: runs one entry with exactly its permission flags from
 * lib/permissions/mod.ts, under the configuration in force, and exits with its exit code.
 *
 * Usage: deno run <launcher flags> tools/run.ts <name> [args...]
 */
import { ConfigError, loadConfig } from "../lib/runtime/config.ts";
import { ALL_ENTRIES, denoRunArgs, isEntryName } from "../lib/permissions/mod.ts";
import { exitCodeOf } from "../lib/runtime/signals.ts";

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || !isEntryName(name)) {
    console.error(`usage: tools/run.ts <name> [args...]\nnames: ${ALL_ENTRIES.join(", ")}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    console.error(e instanceof ConfigError ? `oar-deno: ${e.message}` : e);
    return 1;
  }
  const env: Record<string, string> = {};
  // The child is granted read access to this one file: tell it which one it is.
  if (config.source) env.OARCONFFILE = config.source;
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(name, config, rest),
    env,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Ctrl-C reaches the whole foreground process group; the child handles it and we only wait.
  // SIGTERM (e.g. from a supervisor) is passed on.
  const forward = () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  };
  const ignoreInt = () => {};
  Deno.addSignalListener("SIGTERM", forward);
  Deno.addSignalListener("SIGINT", ignoreInt);
  const status = await child.status;
  Deno.removeSignalListener("SIGTERM", forward);
  Deno.removeSignalListener("SIGINT", ignoreInt);
  return exitCodeOf(status);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
