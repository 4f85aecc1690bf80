/**
 * `deno task start`: the whole server. With an oar.conf of the admin's (OARCONFFILE or
 * /etc/oar/oar.conf) it runs almighty against that; otherwise it brings up the embedded default:
 * a private PostgreSQL under ./var, OAR's schema, a local cluster of 4 hosts × 4 cores (change
 * with --hosts and --cores the first time), and ./var/oar.conf for the commands to find.
 * Ctrl-C stops almighty, its children and the embedded database, leaving no process behind.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { findConfigFile, readConfigFile } from "../lib/runtime/config.ts";
import { ensureEmbeddedPostgres } from "./embedded/postgres.ts";
import {
  type DbLogin,
  DEFAULT_CLUSTER,
  embeddedConfig,
  prepareEmbeddedDatabase,
  renderConfig,
} from "./embedded/setup.ts";
import { embeddedConfigFile, varDir } from "../lib/runtime/paths.ts";
import { checkPassword, DEFAULT_OWNER } from "../lib/db/roles.ts";
import { exitCodeOf } from "../lib/runtime/signals.ts";
import { moduleCommand } from "../lib/runtime/spawn.ts";

const USAGE = "usage: deno task start [--hosts N] [--cores N] [--port-base N] " +
  "[--allow-system-user NAME]...";

/**
 * DB_BASE_LOGIN and DB_BASE_PASSWD of the embedded default's oar.conf, written by an earlier
 * start: the password stays the one generated the first time (the admin may have copied it).
 */
function keptLogin(confPath: string): DbLogin {
  const config = readConfigFile(confPath);
  const kept = { login: config.str("DB_BASE_LOGIN"), password: config.str("DB_BASE_PASSWD") };
  if (kept.login === DEFAULT_OWNER) {
    try {
      checkPassword(kept.password);
    } catch (e) {
      throw new Error(
        `DB_BASE_PASSWD in ${confPath}: ${(e as Error).message}; restore it, or remove ` +
          `${confPath} to have a new password generated (with a new oar.conf)`,
      );
    }
  }
  return kept;
}

export async function main(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        hosts: { type: "string", default: String(DEFAULT_CLUSTER.hosts) },
        cores: { type: "string", default: String(DEFAULT_CLUSTER.coresPerHost) },
        "port-base": { type: "string", default: "6666" },
        // Jobs of root and system accounts are refused unless allowed (written in oar.conf).
        "allow-system-user": { type: "string", multiple: true, default: [] },
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
  const hosts = Number(opts.hosts);
  const cores = Number(opts.cores);
  const portBase = Number(opts["port-base"]);
  if (!Number.isInteger(hosts) || hosts < 1 || !Number.isInteger(cores) || cores < 1) {
    console.error(`--hosts and --cores take positive integers\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(portBase) || portBase < 1024 || portBase > 65529) {
    console.error(`--port-base takes a port number from 1024 to 65529\n${USAGE}`);
    return 2;
  }

  const existing = findConfigFile();
  let stopDb: (() => Promise<void>) | null = null;
  let confPath: string;
  if (existing && existing !== embeddedConfigFile()) {
    confPath = existing;
    console.error(`oar-deno: using ${confPath}`);
  } else {
    const dir = varDir();
    await Deno.mkdir(dir, { recursive: true });
    // Users reach the command server's socket in it (the database and oar.conf are private).
    await Deno.chmod(dir, 0o755);
    let pg;
    try {
      pg = await ensureEmbeddedPostgres({
        dir: join(dir, "pg"),
        socketDir: join(dir, "pgsocket"),
      });
    } catch (e) {
      console.error(`oar-deno: cannot start the embedded PostgreSQL: ${(e as Error).message}`);
      return 1;
    }
    if (pg.startedHere) stopDb = () => pg.stop();
    confPath = embeddedConfigFile();
    try {
      const kept = existsSync(confPath) ? keptLogin(confPath) : null;
      const prepared = await prepareEmbeddedDatabase(pg, "oar", {
        hosts,
        coresPerHost: cores,
      }, { password: kept?.login === DEFAULT_OWNER ? kept.password : undefined });
      const { created, registered } = prepared;
      if (created) console.error("oar-deno: created database oar with OAR's schema");
      if (prepared.superuserDatabase || kept?.login === pg.superuser) {
        console.error(
          `oar-deno: the database still uses the PostgreSQL superuser (set up by an earlier ` +
            `version); to move to the password-protected role ${DEFAULT_OWNER}, stop the server ` +
            `and remove ${dir} to start afresh (its jobs and resources are lost)`,
        );
      }
      if (registered) {
        console.error(
          `oar-deno: registered ${registered} resources (${hosts} hosts × ${cores} cores)`,
        );
      }
      const values = embeddedConfig(pg, "oar", prepared, dir, portBase);
      values.JOB_SYSTEM_USERS_ALLOWED = opts["allow-system-user"].join(",");
      await Deno.mkdir(String(values.OAREXEC_DIRECTORY), { recursive: true });
      await Deno.mkdir(String(values.OAR_RUNTIME_DIRECTORY), { recursive: true });
      // Written once: later edits by the admin are kept.
      if (!existsSync(confPath)) {
        await Deno.writeTextFile(
          confPath,
          renderConfig(values, "oar-deno embedded default; written by deno task start"),
          // It says how to reach the database: for the server's user only. Users reach the
          // server through the command server's socket, beside it in the var directory.
          { mode: 0o600 },
        );
      }
    } catch (e) {
      console.error(`oar-deno: cannot prepare the database: ${(e as Error).message}`);
      await stopDb?.();
      return 1;
    }
    console.error(`oar-deno: database ready (socket in ${pg.socketDir}); config ${confPath}`);
  }

  const config = readConfigFile(confPath);
  const cmd = moduleCommand("almighty", config);
  const almighty = new Deno.Command(cmd.program, {
    args: cmd.args,
    // OAR_SUPERVISED + a stdin pipe: almighty stops if this process dies (lib/runtime/parent_watch.ts).
    env: { ...cmd.env, OARCONFFILE: confPath, OAR_SUPERVISED: "1" },
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const forward = () => {
    try {
      almighty.kill("SIGTERM");
    } catch { /* gone */ }
  };
  // From a terminal, Ctrl-C reaches almighty through the process group as well; passing it on
  // covers a SIGINT sent to this process alone (a second stop request is harmless).
  Deno.addSignalListener("SIGINT", forward);
  Deno.addSignalListener("SIGTERM", forward);
  const status = await almighty.status;
  if (stopDb) {
    console.error("oar-deno: stopping the embedded PostgreSQL");
    await stopDb();
  }
  const code = exitCodeOf(status);
  // almighty's normal stop is 10 (as OAR's); for `deno task start` that is a clean exit.
  return code === 10 ? 0 : code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
