/**
 * `deno task install [--prefix DIR]`: puts the user commands (oarsub, oarstat, oardel, oarhold,
 * oarresume, oarnodes, oarnotify, oarproperty, oarnodesetting) in DIR/bin (default /usr/local),
 * so that users run them from their own directories. Each is one self-contained artifact (a
 * bundle behind a header that runs it with deno and the command's permission flags) wired to
 * the command server of the configuration in force, in the order of `deno task` in the project
 * tree (lib/runtime/config.ts): OARCONFFILE, else this tree's ./var/oar.conf when it exists (a
 * quick start), else /etc/oar/oar.conf. The commands need no configuration file and no
 * credentials: only the command server's socket, which the artifact names.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../lib/runtime/config.ts";
import type { EntryName } from "../lib/permissions/mod.ts";
import { COMMANDS, permissionFlags } from "../lib/permissions/mod.ts";
import { build } from "./compile.ts";
import pLimit from "p-limit";

/** Every command but oar-database, an admin tool that holds the credentials. */
export const USER_COMMANDS: readonly EntryName[] = COMMANDS.filter((c) => c !== "oar-database");

const USAGE = "usage: deno task install [--prefix DIR]   (default /usr/local)";

export async function main(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        prefix: { type: "string", default: "/usr/local" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  let config;
  try {
    config = loadConfig("project");
  } catch (e) {
    console.error(e instanceof ConfigError ? e.message : String(e));
    return 1;
  }
  const socket = config.str("COMMAND_SERVER_SOCKET");
  const bin = join(opts.prefix, "bin");
  await Deno.mkdir(bin, { recursive: true });
  const limit = pLimit(2);
  const failed = (await Promise.all(
    USER_COMMANDS.map((name) =>
      limit(() =>
        build(name, bin, permissionFlags(name, config), undefined, {
          OAR_COMMAND_SOCKET: socket,
        })
      )
    ),
  )).filter((r) => r !== null);
  for (const f of failed) console.error(f);
  if (failed.length) return 1;
  console.log(
    `${USER_COMMANDS.length} commands in ${bin}, talking to the command server at ${socket}` +
      (config.source ? ` (from ${config.source})` : ""),
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
