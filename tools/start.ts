/**
 * `deno task start`: the whole server. It brings up the embedded default: a private PostgreSQL
 * under ./var, OAR's schema, a local cluster of 4 hosts × 4 cores (--hosts and --cores), and
 * ./var/oar.conf for the commands to find; or, with `--config FILE`, runs against that file.
 * An outside configuration (OARCONFFILE, /etc/oar/oar.conf) is never used unless named so: a
 * quick start must not land on another OAR's database.
 *
 * It supervises almighty as systemd would: restarted with back-off when it dies, not when it
 * stops cleanly. SIGINT, SIGTERM or SIGHUP, at any moment (set-up included), stop almighty, its
 * children and the embedded database, leaving no process behind. One start per var directory
 * (a pid file there says which).
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { readConfigFile, systemConfigFile } from "../lib/runtime/config.ts";
import { type EmbeddedPg, ensureEmbeddedPostgres } from "./embedded/postgres.ts";
import {
  type DbLogin,
  DEFAULT_CLUSTER,
  embeddedConfig,
  prepareEmbeddedDatabase,
  renderConfig,
} from "./embedded/setup.ts";
import { embeddedConfigFile, varDir } from "../lib/runtime/paths.ts";
import { checkPassword, DEFAULT_OWNER } from "../lib/db/roles.ts";
import { exitCodeOf, SIGNAL_NUMBERS } from "../lib/runtime/signals.ts";
import { moduleCommand } from "../lib/runtime/spawn.ts";

const USAGE = "usage: deno task start [--hosts N] [--cores N] [--port-base N] " +
  "[--allow-system-user NAME]... | deno task start --config FILE";

/** The system-wide configuration of an installed OAR (Debian's OAR writes it). */

/** almighty's restart back-off: doubles from the first to the last, reset after a stable run. */
const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_RUN_MS = 60_000;

/** Deaths systemd counts as a clean stop (someone asked for it): not restarted. */
const CLEAN_SIGNALS = new Set(["SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"]);

/** almighty's own exit code for a requested stop (as OAR's). */
const ALMIGHTY_STOPPED = 10;

/**
 * The stop requests (SIGINT, SIGTERM, SIGHUP), listened to from the very first line of main:
 * a signal during initdb or while PostgreSQL starts must abort the set-up, not kill this
 * process and orphan what it started.
 */
class StopRequest {
  readonly #controller = new AbortController();
  readonly #listeners: [Deno.Signal, () => void][] = [];
  signalName: Deno.Signal | null = null;

  constructor() {
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const listener = () => {
        if (this.signalName) return; // a second request is the same request
        this.signalName = sig;
        this.#controller.abort(new Error(`stopped by ${sig}`));
      };
      Deno.addSignalListener(sig, listener);
      this.#listeners.push([sig, listener]);
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get requested(): boolean {
    return this.signalName !== null;
  }

  /** Runs `fn` on the stop request (at once if already requested); returns an unsubscribe. */
  onStop(fn: () => void): () => void {
    if (this.requested) fn();
    this.signal.addEventListener("abort", fn, { once: true });
    return () => this.signal.removeEventListener("abort", fn);
  }

  /** Waits `ms`; false when a stop was requested meanwhile. */
  sleep(ms: number): Promise<boolean> {
    return new Promise((done) => {
      const timer = setTimeout(() => {
        off();
        done(true);
      }, ms);
      const off = this.onStop(() => {
        clearTimeout(timer);
        done(false);
      });
    });
  }

  /** The exit code of a start interrupted during set-up: as a shell reports the signal. */
  get exitCode(): number {
    return 128 + (SIGNAL_NUMBERS[this.signalName ?? "SIGTERM"] ?? 15);
  }

  dispose(): void {
    for (const [sig, fn] of this.#listeners) Deno.removeSignalListener(sig, fn);
  }
}

/**
 * A process's start time since boot (/proc/PID/stat, field 22): with the pid it names one
 * process for good, so the pid file below cannot be taken over by a pid reused after a crash.
 */
function processStartTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Takes `<var dir>/start.pid` ("pid starttime"), or returns the pid of the live start holding
 * it. A holder that is gone (killed, machine rebooted) is detected by its start time and its
 * file replaced. The file is written beside and linked into place, so a reader never sees it
 * half written and two starts cannot both create it.
 */
function takeStartLock(dir: string): { release: () => void } | { holder: number } {
  const path = join(dir, "start.pid");
  const mine = `${Deno.pid} ${processStartTime(Deno.pid)}\n`;
  const tmp = `${path}.${Deno.pid}`;
  Deno.writeTextFileSync(tmp, mine, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        Deno.linkSync(tmp, path);
        return {
          release: () => {
            try {
              if (Deno.readTextFileSync(path) === mine) Deno.removeSync(path);
            } catch { /* already gone */ }
          },
        };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      let held = "";
      try {
        held = Deno.readTextFileSync(path);
      } catch { /* removed meanwhile: try again */ }
      const [pid, started] = held.trim().split(" ");
      if (held && processStartTime(Number(pid)) === started) return { holder: Number(pid) };
      // Left by a start that died without removing it.
      try {
        if (Deno.readTextFileSync(path) === held) Deno.removeSync(path);
      } catch { /* removed meanwhile */ }
    }
    throw new Error(`cannot take ${path}: it keeps changing`);
  } finally {
    Deno.removeSync(tmp);
  }
}

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

/** The outside configuration a plain start leaves alone, and where it was found. */
function outsideConfig(): string | null {
  const fromEnv = Deno.env.get("OARCONFFILE");
  if (fromEnv && resolve(fromEnv) !== embeddedConfigFile()) return `${fromEnv} (OARCONFFILE)`;
  const system = systemConfigFile();
  return existsSync(system) ? system : null;
}

export async function main(args: string[]): Promise<number> {
  // First of all: from here on a signal is a stop request, never an abrupt end.
  const stop = new StopRequest();
  try {
    return await start(args, stop);
  } finally {
    stop.dispose();
  }
}

async function start(args: string[], stop: StopRequest): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        // No defaults here: given explicitly or not makes a difference (see below).
        hosts: { type: "string" },
        cores: { type: "string" },
        "port-base": { type: "string" },
        // Jobs of root and system accounts are refused unless allowed (written in oar.conf).
        "allow-system-user": { type: "string", multiple: true },
        config: { type: "string" },
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
  const hosts = Number(opts.hosts ?? DEFAULT_CLUSTER.hosts);
  const cores = Number(opts.cores ?? DEFAULT_CLUSTER.coresPerHost);
  const portBase = Number(opts["port-base"] ?? 6666);
  if (!Number.isInteger(hosts) || hosts < 1 || !Number.isInteger(cores) || cores < 1) {
    console.error(`--hosts and --cores take positive integers\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(portBase) || portBase < 1024 || portBase > 65529) {
    console.error(`--port-base takes a port number from 1024 to 65529\n${USAGE}`);
    return 2;
  }
  // --config naming ./var/oar.conf is the embedded default itself.
  const external = opts.config !== undefined && resolve(opts.config) !== embeddedConfigFile()
    ? resolve(opts.config)
    : null;
  const embeddedOnly = ["hosts", "cores", "port-base", "allow-system-user"] as const;
  const misplaced = embeddedOnly.filter((o) => opts[o] !== undefined);
  if (external && misplaced.length) {
    console.error(
      `--${misplaced.join(", --")}: these shape the embedded default; with --config, ` +
        `${external} says how the server runs\n${USAGE}`,
    );
    return 2;
  }
  if (external) {
    try {
      readConfigFile(external);
    } catch (e) {
      console.error(`oar-deno: --config ${external}: ${(e as Error).message}`);
      return 1;
    }
  }

  const dir = varDir();
  await Deno.mkdir(dir, { recursive: true });
  // Users reach the command server's socket in it (the database and oar.conf are private).
  await Deno.chmod(dir, 0o755);
  const lock = takeStartLock(dir);
  if ("holder" in lock) {
    console.error(`oar-deno: a server is already running (pid ${lock.holder}, var dir ${dir})`);
    return 1;
  }
  let pg: EmbeddedPg | null = null;
  try {
    let confPath: string;
    if (external) {
      confPath = external;
      console.error(`oar-deno: using ${confPath} (--config)`);
    } else {
      const outside = outsideConfig();
      if (outside) {
        console.error(
          `oar-deno: ignoring ${outside}: running the embedded default in ${dir} ` +
            `(give --config FILE to run against another configuration)`,
        );
      }
      const ready = await embeddedDefault(dir, { hosts, cores, portBase, opts, stop });
      if (typeof ready === "number") return ready;
      pg = ready.pg;
      confPath = ready.confPath;
    }
    if (stop.requested) {
      console.error(`oar-deno: ${stop.signalName} during set-up: stopping`);
      return stop.exitCode;
    }
    return await superviseAlmighty(confPath, stop);
  } finally {
    if (pg) {
      console.error("oar-deno: stopping the embedded PostgreSQL");
      await pg.stop().catch((e) => {
        console.error(`oar-deno: cannot stop the embedded PostgreSQL: ${(e as Error).message}`);
      });
    }
    lock.release();
  }
}

/**
 * Brings up the embedded default: its PostgreSQL (this start owns it from now on, even one left
 * running by a crash), the database, ./var/oar.conf. Returns an exit code when it cannot; on a
 * stop request it returns what it started so far, for the caller to stop.
 */
async function embeddedDefault(
  dir: string,
  o: {
    hosts: number;
    cores: number;
    portBase: number;
    opts: { hosts?: string; cores?: string; "allow-system-user"?: string[] };
    stop: StopRequest;
  },
): Promise<number | { pg: EmbeddedPg; confPath: string }> {
  const { stop } = o;
  let pg: EmbeddedPg;
  try {
    pg = await ensureEmbeddedPostgres({
      dir: join(dir, "pg"),
      socketDir: join(dir, "pgsocket"),
      signal: stop.signal,
    });
  } catch (e) {
    if (stop.requested) {
      // ensureEmbeddedPostgres removed initdb's directory and stopped the server it started.
      console.error(`oar-deno: ${stop.signalName} during set-up: stopped`);
      return stop.exitCode;
    }
    console.error(`oar-deno: cannot start the embedded PostgreSQL: ${(e as Error).message}`);
    return 1;
  }
  if (pg.reusedPid !== undefined) {
    // No other start holds this var dir (the pid file): a server running here was left by a
    // start that died. This start takes it over, and stops it when it ends.
    console.error(
      `oar-deno: reusing the PostgreSQL left running in ${pg.dataDir} (pid ${pg.reusedPid}) ` +
        `by an earlier start; it stops with this one`,
    );
  } else if (pg.stalePid !== undefined) {
    console.error(
      `oar-deno: removed the stale postmaster.pid in ${pg.dataDir} (pid ${pg.stalePid} is ` +
        `gone: the server had crashed); started it afresh`,
    );
  }
  const confPath = embeddedConfigFile();
  try {
    const kept = existsSync(confPath) ? keptLogin(confPath) : null;
    const prepared = await prepareEmbeddedDatabase(pg, "oar", {
      hosts: o.hosts,
      coresPerHost: o.cores,
    }, {
      password: kept?.login === DEFAULT_OWNER ? kept.password : undefined,
      // Only when asked for: a plain start keeps whatever cluster the database has.
      reshape: o.opts.hosts !== undefined || o.opts.cores !== undefined,
    });
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
        `oar-deno: ${prepared.reshaped ? "re-registered the cluster as" : "registered"} ` +
          `${registered} resources (${o.hosts} hosts × ${o.cores} cores)`,
      );
    }
    const values = embeddedConfig(pg, "oar", prepared, dir, o.portBase);
    values.JOB_SYSTEM_USERS_ALLOWED = (o.opts["allow-system-user"] ?? []).join(",");
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
    console.error("oar-deno: stopping the embedded PostgreSQL");
    await pg.stop().catch(() => {});
    return 1;
  }
  console.error(`oar-deno: database ready (socket in ${pg.socketDir}); config ${confPath}`);
  return { pg, confPath };
}

/**
 * Runs almighty until a clean stop: its exit 10 (it was asked to stop) or a death by SIGTERM,
 * SIGINT, SIGHUP or SIGPIPE, or this process's own stop request. Any other death (SIGKILL, a
 * crash) restarts it after a back-off, the database staying up; its companions died with it
 * (lib/runtime/parent_watch.ts) and the new almighty starts them again. A first run that exits
 * by itself at once could not start (ports taken, bad configuration): not restarted.
 */
async function superviseAlmighty(confPath: string, stop: StopRequest): Promise<number> {
  const config = readConfigFile(confPath);
  const cmd = moduleCommand("almighty", config);
  let backoffMs = MIN_BACKOFF_MS;
  for (let run = 1;; run++) {
    const started = Date.now();
    const almighty = new Deno.Command(cmd.program, {
      args: cmd.args,
      // OAR_SUPERVISED + a stdin pipe: almighty stops if this process dies
      // (lib/runtime/parent_watch.ts).
      env: { ...cmd.env, OARCONFFILE: confPath, OAR_SUPERVISED: "1" },
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    // From a terminal, Ctrl-C reaches almighty through the process group as well; passing it
    // on covers a signal sent to this process alone (a second stop request is harmless).
    const off = stop.onStop(() => {
      try {
        almighty.kill("SIGTERM");
      } catch { /* gone */ }
    });
    const status = await almighty.status;
    off();
    almighty.stdin.close().catch(() => {});
    const code = exitCodeOf(status);
    const clean = code === ALMIGHTY_STOPPED || code === 0 ||
      (status.signal !== null && CLEAN_SIGNALS.has(status.signal));
    if (stop.requested) return clean ? 0 : code;
    if (clean) {
      console.error(`oar-deno: almighty stopped (exit ${code}); stopping`);
      return 0;
    }
    const ran = Date.now() - started;
    if (run === 1 && status.signal === null && ran < 10_000) return code;
    if (ran >= STABLE_RUN_MS) backoffMs = MIN_BACKOFF_MS;
    const how = status.signal ? `killed by ${status.signal}` : `exit ${code}`;
    console.error(
      `oar-deno: almighty died (${how}) after ${Math.round(ran / 1000)} s; ` +
        `restarting it in ${backoffMs / 1000} s`,
    );
    if (!(await stop.sleep(backoffMs))) return 0;
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
