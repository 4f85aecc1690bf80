/**
 * `deno task <module|command> [args]`: runs one entry with exactly its permission flags from
 * lib/permissions/mod.ts, under the configuration in force, and exits with its exit code.
 *
 * The configuration is looked for in the project tree's order (lib/runtime/config.ts):
 * OARCONFFILE, else this tree's ./var/oar.conf when it exists (the quick start's), else
 * /etc/oar/oar.conf; the entry is handed the file chosen as OARCONFFILE, so it reads that one
 * whatever else the machine holds. With OAR_VERBOSE=1 it first says, on stderr, which file that
 * is and which database (or command server) it points to.
 *
 * Usage: deno run <launcher flags> tools/run.ts <name> [args...]
 */
import {
  chooseConfigFile,
  type Config,
  ConfigError,
  loadConfigFile,
} from "../lib/runtime/config.ts";
import { dbTarget, describeTarget } from "../lib/db/target.ts";
import {
  ALL_ENTRIES,
  denoRunArgs,
  type EntryName,
  entrySpec,
  isEntryName,
} from "../lib/permissions/mod.ts";
import { exitCodeOf } from "../lib/runtime/signals.ts";
import { envGet } from "../lib/runtime/env.ts";

/** OAR_VERBOSE: on, off, or a message for a value we do not understand. */
export function verbosity(value: string | undefined): boolean | string {
  const v = (value ?? "").trim().toLowerCase();
  if (["", "0", "no", "false", "off"].includes(v)) return false;
  if (["1", "yes", "true", "on"].includes(v)) return true;
  return `OAR_VERBOSE must be 1 or 0 (yes or no), not "${value}"`;
}

/** The line OAR_VERBOSE=1 prints: the file, why it was chosen, and where it points. */
export function whichLine(name: EntryName, why: string, config: Config): string {
  const file = config.source ? `${config.source} (${why})` : why;
  let target: string;
  try {
    target = entrySpec(name).needs.includes("command_client")
      // The user's half reaches the command server, which uses the database of its own oar.conf.
      ? `command server ${envGet("OAR_COMMAND_SOCKET") ?? config.str("COMMAND_SERVER_SOCKET")}`
      : describeTarget(dbTarget(config));
  } catch (e) {
    target = (e as Error).message;
  }
  return `oar-deno: ${name}: configuration ${file}; ${target}`;
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || !isEntryName(name)) {
    console.error(`usage: tools/run.ts <name> [args...]\nnames: ${ALL_ENTRIES.join(", ")}`);
    return 2;
  }
  const verbose = verbosity(envGet("OAR_VERBOSE"));
  if (typeof verbose === "string") {
    console.error(`oar-deno: ${verbose}`);
    return 2;
  }
  let config;
  const choice = chooseConfigFile("project");
  try {
    config = loadConfigFile(choice.file);
  } catch (e) {
    // Which rule chose the file, so that a stray OARCONFFILE is seen as the cause.
    console.error(`oar-deno: ${e instanceof ConfigError ? e.message : e} (${choice.why})`);
    return 1;
  }
  if (verbose) console.error(whichLine(name, choice.why, config));
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
