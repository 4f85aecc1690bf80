/**
 * The embedded default database: a private PostgreSQL instance created with the machine's own
 * server binaries (initdb + pg_ctl), reachable only through a unix socket, so that oar-deno runs
 * on a fresh machine with no database service to configure. The test harness uses the same code
 * for its throwaway instances.
 *
 * PostgreSQL refuses to run as root. When we are root, initdb and the server run as the
 * `postgres` system account (which Debian's `postgresql` package creates), and that account
 * must own the data directory and be able to reach it and the socket directory: every parent
 * directory needs its execute bit for that account. A project under /root (mode 0700) does not
 * allow that, so in that case the data lives under /var/lib/oar-deno and the socket under
 * /run/oar-deno, in directories named after a hash of the requested path (stable from one run
 * to the next), with a symlink left at the requested data path so that it can be found.
 */
import { basename, dirname, join, resolve } from "node:path";

/** A running instance. */
export interface EmbeddedPg {
  /** PostgreSQL data directory (PGDATA). */
  dataDir: string;
  /** Directory holding the server's unix socket (use it as DB_HOSTNAME). */
  socketDir: string;
  port: number;
  /** Superuser role, trusted over the local socket (other roles need their password). */
  superuser: string;
  /** True when this call started the server, false when it was already running. */
  startedHere: boolean;
  /** The pid of the server found running (left by a crashed start), when not startedHere. */
  reusedPid?: number;
  /** The pid named by a postmaster.pid whose server was gone, removed before starting. */
  stalePid?: number;
  /** `postgres://` URL of one database of this instance, through its socket. */
  url(dbname?: string): string;
  /** Fast shutdown, waiting until the server is gone. */
  stop(): Promise<void>;
  /** Immediate shutdown, synchronously (for `unload` handlers and exit paths). */
  stopSync(): void;
}

export interface EnsureOptions {
  /** The data directory, e.g. `<varDir>/pg`; created with initdb when new. */
  dir: string;
  /** Where the unix socket goes (a dedicated directory: it is created and, as root, chowned). */
  socketDir: string;
  /** Names the socket file; nothing listens on TCP. Default 5432. */
  port?: number;
  /** Extra `postgresql.conf` settings (the throwaway instance turns durability off). */
  settings?: Record<string, string | number>;
  /**
   * Aborts the set-up (`deno task start` stopped by a signal): a running initdb is killed and its
   * temporary directory removed, the server (started by this call, or found running: the caller
   * owns it then) is stopped, and the call rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

const SUPERUSER = "postgres";
const START_DEADLINE_MS = 60_000;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** The account PostgreSQL runs as, and how to run a command as it. */
interface RunAs {
  uid: number;
  gid: number;
  /** Prepended to every server-side command ([] when we are not root). */
  prefix: string[];
}

/** An Error carrying the command's output, so that failures explain themselves. */
function commandError(what: string, out: Deno.CommandOutput): Error {
  const text = new TextDecoder().decode(out.stderr).trim() ||
    new TextDecoder().decode(out.stdout).trim();
  return new Error(`${what} failed (exit ${out.code})${text ? `: ${text}` : ""}`);
}

async function run(
  cmd: string[],
  what: string,
  signal?: AbortSignal,
): Promise<Deno.CommandOutput> {
  signal?.throwIfAborted();
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Killed (SIGTERM) on abort: output() then resolves with the signal, reported below.
    signal,
  }).output();
  // The abort's reason rather than "initdb failed (signal)": the caller asked for it.
  signal?.throwIfAborted();
  if (!out.success) throw commandError(what, out);
  return out;
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

function hasServerBinaries(dir: string): boolean {
  return ["initdb", "pg_ctl", "postgres", "pg_isready"].every((b) => isExecutable(join(dir, b)));
}

/**
 * The directory of PostgreSQL's server binaries: `OAR_PG_BINDIR`, then `pg_config --bindir`,
 * then the highest version under /usr/lib/postgresql (Debian installs them off the PATH).
 */
export async function findPgBinDir(where: {
  /** Default: $OAR_PG_BINDIR. */
  override?: string;
  /** Default: "pg_config" on the PATH. */
  pgConfig?: string;
  /** Default: /usr/lib/postgresql. */
  debianRoot?: string;
} = {}): Promise<string> {
  const tried: string[] = [];
  const fromEnv = "override" in where ? where.override : Deno.env.get("OAR_PG_BINDIR");
  if (fromEnv) {
    if (hasServerBinaries(fromEnv)) return fromEnv;
    tried.push(fromEnv);
  }
  try {
    const out = await new Deno.Command(where.pgConfig ?? "pg_config", {
      args: ["--bindir"],
      stderr: "null",
    }).output();
    const dir = new TextDecoder().decode(out.stdout).trim();
    if (out.success && dir) {
      if (hasServerBinaries(dir)) return dir;
      tried.push(dir);
    }
  } catch {
    // pg_config is optional (it comes with libpq-dev, not with the server).
  }
  const root = where.debianRoot ?? "/usr/lib/postgresql";
  const versions: { v: number[]; dir: string }[] = [];
  try {
    for (const e of Deno.readDirSync(root)) {
      if (/^\d+(\.\d+)*$/.test(e.name)) {
        versions.push({ v: e.name.split(".").map(Number), dir: `${root}/${e.name}/bin` });
      }
    }
  } catch {
    // No Debian-style install.
  }
  versions.sort((a, b) => (b.v[0] - a.v[0]) || ((b.v[1] ?? 0) - (a.v[1] ?? 0)));
  for (const { dir } of versions) {
    if (hasServerBinaries(dir)) return dir;
    tried.push(dir);
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found" +
      (tried.length ? ` (looked in ${tried.join(", ")})` : "") +
      ": install the Debian package `postgresql` (apt-get install postgresql), " +
      "or set OAR_PG_BINDIR to their directory",
  );
}

/** Major version of the server binaries ("15"). */
async function binVersion(bin: string): Promise<string> {
  const out = await run([join(bin, "postgres"), "--version"], "postgres --version");
  const m = new TextDecoder().decode(out.stdout).match(/(\d+)(\.\d+)?/);
  if (!m) throw new Error(`cannot parse the output of ${join(bin, "postgres")} --version`);
  return m[1];
}

/** As root: the `postgres` account and a way to become it. Otherwise: ourselves. */
async function serverAccount(): Promise<RunAs> {
  const uid = Deno.uid();
  if (uid === null) throw new Error("the embedded database needs a Unix system");
  if (uid !== 0) return { uid, gid: Deno.gid() ?? uid, prefix: [] };
  const out = await new Deno.Command("getent", { args: ["passwd", SUPERUSER], stderr: "null" })
    .output().catch(() => null);
  const fields = out?.success ? new TextDecoder().decode(out.stdout).trim().split(":") : [];
  if (fields.length < 4) {
    throw new Error(
      `running as root, and PostgreSQL refuses to run as root: no "${SUPERUSER}" account to run ` +
        "it as. Install the Debian package `postgresql` (it creates that account), or run as a " +
        "regular user",
    );
  }
  const [pwUid, pwGid] = [Number(fields[2]), Number(fields[3])];
  // setpriv changes only the ids (no PAM session, unlike su/runuser); both are in util-linux.
  const prefix = isExecutable("/usr/bin/setpriv")
    ? ["/usr/bin/setpriv", `--reuid=${pwUid}`, `--regid=${pwGid}`, "--init-groups", "--"]
    : ["runuser", "-u", SUPERUSER, "--"];
  return { uid: pwUid, gid: pwGid, prefix };
}

/** True when `acct` can reach `path` (execute permission on it and every parent). */
function traversable(path: string, acct: RunAs): boolean {
  if (acct.uid === 0) return true;
  let p = resolve(path);
  for (;;) {
    try {
      const st = Deno.statSync(p);
      const mode = st.mode ?? 0;
      const ok = st.uid === acct.uid
        ? (mode & 0o100) !== 0
        : st.gid === acct.gid
        ? (mode & 0o010) !== 0
        : (mode & 0o001) !== 0;
      if (!ok) return false;
    } catch {
      // Not created yet: its parents decide.
    }
    if (p === "/") return true;
    p = dirname(p);
  }
}

async function shortHash(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].slice(0, 6).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The path with symlinks resolved, even when the last one dangles (data not created yet). */
function resolvedPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    try {
      return resolve(dirname(path), Deno.readLinkSync(path));
    } catch {
      return path;
    }
  }
}

/** mkdir -p, then hand the directory to the server account when we are root. */
async function ownedDir(path: string, acct: RunAs, mode = 0o700): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode });
  if (Deno.uid() === 0) await Deno.chown(path, acct.uid, acct.gid);
  await Deno.chmod(path, mode);
}

/** `'value'` for postgresql.conf. */
function confValue(v: string | number): string {
  return typeof v === "number"
    ? String(v)
    : `'${v.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** Reads postmaster.pid: pid (line 1) and socket directory (line 5). */
function readPidFile(dataDir: string): { pid: number } | null {
  try {
    const lines = Deno.readTextFileSync(join(dataDir, "postmaster.pid")).split("\n");
    const pid = Number(lines[0]);
    return Number.isInteger(pid) && pid > 0 ? { pid } : null;
  } catch {
    return null;
  }
}

/**
 * True when `pid` is a live postmaster of this data directory. The postmaster's working
 * directory is its data directory, which tells it apart from an unrelated process that reused
 * the pid of a server killed before a reboot (PostgreSQL itself would then refuse to start).
 */
function isOurPostmaster(pid: number, dataDir: string): boolean {
  try {
    return Deno.realPathSync(`/proc/${pid}/cwd`) === Deno.realPathSync(dataDir);
  } catch {
    return false;
  }
}

/**
 * Removes a postmaster.pid or socket lock file whose process is not our server; returns the pid
 * the removed postmaster.pid named.
 */
function removeStaleLocks(dataDir: string, socketFile: string): number | undefined {
  let stalePid: number | undefined;
  const pidInfo = readPidFile(dataDir);
  if (pidInfo && !isOurPostmaster(pidInfo.pid, dataDir)) {
    Deno.removeSync(join(dataDir, "postmaster.pid"));
    stalePid = pidInfo.pid;
  }
  try {
    const lockPid = Number(Deno.readTextFileSync(`${socketFile}.lock`).split("\n")[0]);
    if (!isOurPostmaster(lockPid, dataDir)) {
      Deno.removeSync(`${socketFile}.lock`);
      if (exists(socketFile)) Deno.removeSync(socketFile);
    }
  } catch {
    // No lock file.
  }
  return stalePid;
}

async function isReady(bin: string, socketDir: string, port: number): Promise<boolean> {
  const out = await new Deno.Command(join(bin, "pg_isready"), {
    args: ["-q", "-h", socketDir, "-p", String(port), "-U", SUPERUSER, "-d", "postgres", "-t", "2"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no server log)";
  }
}

/** Creates a data directory atomically: initdb into a sibling, then rename into place. */
async function initDataDir(
  bin: string,
  dataDir: string,
  acct: RunAs,
  noSync: boolean,
  signal?: AbortSignal,
) {
  const parent = dirname(dataDir);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dataDir)}.initdb-${crypto.randomUUID().slice(0, 8)}`);
  await ownedDir(tmp, acct);
  try {
    await run(
      [
        ...acct.prefix,
        join(bin, "initdb"),
        "-D",
        tmp,
        "-U",
        SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        // C locale: deterministic sorting, and no dependency on which locales the machine has.
        "--locale=C",
        ...(noSync ? ["--no-sync"] : []),
      ],
      "initdb",
      signal,
    );
    // Who may log in, for a new data directory (one made by an earlier version keeps its own,
    // which trusted every role). The superuser stays trusted: only the server's account and root
    // can open the socket, and the test harness and the setup of the embedded default connect
    // as it. Every other role needs its password, so that the daemons' role (lib/db/roles.ts)
    // is bound by its privileges and not a superuser in disguise. No TCP lines: nothing listens
    // on the network.
    await Deno.writeTextFile(
      join(tmp, "pg_hba.conf"),
      "# oar-deno embedded PostgreSQL (tools/embedded/postgres.ts): unix socket only\n" +
        "# TYPE  DATABASE  USER  METHOD\n" +
        `local   all       ${SUPERUSER}  trust\n` +
        "local   all       all       scram-sha-256\n",
    );
    // The settings that make it ours live in one file we rewrite at every start.
    await Deno.writeTextFile(
      join(tmp, "postgresql.conf"),
      "\n# oar-deno: socket, port and durability settings\ninclude_if_exists = 'oar-deno.conf'\n",
      { append: true },
    );
    // Not renamed into place once a stop is asked for: the finally below removes it.
    signal?.throwIfAborted();
    try {
      await Deno.rename(tmp, dataDir);
    } catch (e) {
      // Another process initialised it first (rename onto a non-empty directory fails).
      if (exists(join(dataDir, "PG_VERSION"))) return;
      throw e;
    }
  } finally {
    if (exists(tmp)) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts (creating it first if needed) the PostgreSQL instance in `opts.dir`, listening only on
 * a unix socket, and returns once it accepts connections. Reuses a running server.
 */
export async function ensureEmbeddedPostgres(opts: EnsureOptions): Promise<EmbeddedPg> {
  const bin = await findPgBinDir();
  const acct = await serverAccount();
  const port = opts.port ?? 5432;
  const requested = resolve(opts.dir);
  let dataDir = resolvedPath(requested);

  // As root, data the postgres account cannot reach moves to /var/lib/oar-deno (see above).
  if (Deno.uid() === 0 && !exists(dataDir) && !traversable(dirname(dataDir), acct)) {
    dataDir = `/var/lib/oar-deno/pg-${await shortHash(requested)}`;
    await Deno.mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
    if (!exists(requested)) {
      await Deno.mkdir(dirname(requested), { recursive: true });
      await Deno.symlink(dataDir, requested);
    }
  }
  if (!traversable(dataDir, acct)) {
    throw new Error(
      `the PostgreSQL account (uid ${acct.uid}) cannot reach ${dataDir}: a parent directory ` +
        "lacks the execute permission. Move the data directory or remove it to let oar-deno " +
        "relocate it",
    );
  }

  let socketDir = resolve(opts.socketDir);
  if (
    (Deno.uid() === 0 && !traversable(dirname(socketDir), acct)) ||
    `${socketDir}/.s.PGSQL.${port}`.length > MAX_SOCKET_PATH
  ) {
    const root = Deno.uid() === 0 ? "/run/oar-deno" : `/tmp/oar-deno-${acct.uid}`;
    socketDir = `${root}/${await shortHash(dataDir)}`;
    await Deno.mkdir(root, { recursive: true, mode: 0o755 });
  }
  await ownedDir(socketDir, acct, 0o755);

  const version = await binVersion(bin);
  const settings = opts.settings ?? {};
  if (!exists(join(dataDir, "PG_VERSION"))) {
    await initDataDir(bin, dataDir, acct, settings.fsync === "off", opts.signal);
  } else {
    const have = Deno.readTextFileSync(join(dataDir, "PG_VERSION")).trim();
    if (have !== version) {
      throw new Error(
        `${dataDir} holds a PostgreSQL ${have} database but the server binaries in ${bin} are ` +
          `version ${version}: upgrade it with pg_upgrade, or remove it to start afresh`,
      );
    }
  }

  const conf: Record<string, string | number> = {
    // Nothing on the network: only processes that can open the socket file reach it.
    listen_addresses: "",
    unix_socket_directories: socketDir,
    // Only the server's account (and root) may connect. The superuser is trusted over the
    // socket (pg_hba.conf, written by initDataDir), so the socket's mode is what guards it.
    unix_socket_permissions: "0700",
    port,
    ...settings,
  };
  const confText = Object.entries(conf).map(([k, v]) => `${k} = ${confValue(v)}\n`).join("");
  const confFile = join(dataDir, "oar-deno.conf");
  await Deno.writeTextFile(confFile, confText);
  if (Deno.uid() === 0) await Deno.chown(confFile, acct.uid, acct.gid);

  const socketFile = `${socketDir}/.s.PGSQL.${port}`;
  const logFile = join(dataDir, "oar-deno-server.log");
  const pgCtl = (args: string[]) => [...acct.prefix, join(bin, "pg_ctl"), "-D", dataDir, ...args];

  let startedHere = false;
  let reusedPid: number | undefined;
  let stalePid: number | undefined;
  const running = readPidFile(dataDir);
  if (running && isOurPostmaster(running.pid, dataDir)) {
    reusedPid = running.pid;
  } else {
    opts.signal?.throwIfAborted();
    stalePid = removeStaleLocks(dataDir, socketFile);
    // -W: we poll readiness ourselves, with our deadline and a useful error. No abort signal
    // here: pg_ctl returns at once, and killing it could leave a server nobody knows about.
    await run(pgCtl(["start", "-W", "-s", "-l", logFile]), `pg_ctl start (log: ${logFile})`);
    startedHere = true;
  }
  const stopNow = async () => {
    const [cmd, ...args] = pgCtl(["stop", "-s", "-m", "fast", "-w", "-t", "60"]);
    await new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
      .output();
  };
  const since = Date.now();
  while (!(await isReady(bin, socketDir, port))) {
    // A stop asked for while the server starts: the server goes with it (one found running is
    // the caller's from now on, see `signal`).
    if (opts.signal?.aborted) {
      await stopNow();
      opts.signal.throwIfAborted();
    }
    const pid = readPidFile(dataDir);
    const alive = pid !== null && isOurPostmaster(pid.pid, dataDir);
    // A server that is gone for more than a moment after pg_ctl returned has failed to start.
    const waited = Date.now() - since;
    if (waited > START_DEADLINE_MS || (!alive && waited > 5_000)) {
      throw new Error(
        `PostgreSQL in ${dataDir} did not become ready on ${socketFile}` +
          `${alive ? " within 60 s" : " (the server exited)"}; last lines of ${logFile}:\n` +
          tail(logFile),
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (opts.signal?.aborted) {
    await stopNow();
    opts.signal.throwIfAborted();
  }

  const url = (dbname = "postgres") =>
    `postgres://${SUPERUSER}@localhost:${port}/${encodeURIComponent(dbname)}?host=${
      encodeURIComponent(socketDir)
    }`;
  return {
    dataDir,
    socketDir,
    port,
    superuser: SUPERUSER,
    startedHere,
    reusedPid,
    stalePid,
    url,
    async stop() {
      if (!readPidFile(dataDir)) return;
      await run(pgCtl(["stop", "-s", "-m", "fast", "-w", "-t", "60"]), "pg_ctl stop");
    },
    stopSync() {
      if (!readPidFile(dataDir)) return;
      const [cmd, ...args] = pgCtl(["stop", "-s", "-m", "immediate", "-w", "-t", "30"]);
      new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" }).outputSync();
    },
  };
}

export interface ThrowawayOptions {
  /** Directory to create it in (must not exist or be empty); default: a fresh temp dir. */
  dir?: string;
  /**
   * Stop and remove the instance once this process is gone, even if it is killed before it can
   * clean up (default: the current process). A small detached shell polls for it.
   */
  watchPid?: number;
}

/**
 * A fresh instance in a temporary directory, with durability off (fast, disposable); `stop()`
 * shuts it down and removes the directory. For tests.
 */
export async function startThrowawayPostgres(opts: ThrowawayOptions = {}): Promise<EmbeddedPg> {
  const base = opts.dir ?? await Deno.makeTempDir({ prefix: "oar-deno-pg-" });
  await Deno.mkdir(base, { recursive: true });
  // makeTempDir gives 0700; the server account must get through it to its data and socket.
  await Deno.chmod(base, 0o755);
  const removeBase = () => Deno.removeSync(base, { recursive: true });
  let pg: EmbeddedPg;
  try {
    pg = await ensureEmbeddedPostgres({
      dir: join(base, "data"),
      socketDir: join(base, "sock"),
      settings: {
        fsync: "off",
        synchronous_commit: "off",
        full_page_writes: "off",
        // Tests create and drop many databases; keep checkpoints from being forced often.
        max_wal_size: "1GB",
      },
    });
  } catch (e) {
    try {
      removeBase();
    } catch { /* already gone */ }
    throw e;
  }
  await startWatchdog(opts.watchPid ?? Deno.pid, pg, base);
  return {
    ...pg,
    async stop() {
      await pg.stop();
      await Deno.remove(base, { recursive: true }).catch(() => {});
    },
    stopSync() {
      pg.stopSync();
      try {
        removeBase();
      } catch { /* already gone */ }
    },
  };
}

/**
 * A detached shell that stops the instance and removes `base` as soon as `pid` has exited
 * (normally or not), and exits by itself once `base` is gone (a normal stop). It is started
 * through a shell that returns at once, so the caller holds no child-process resource.
 */
async function startWatchdog(pid: number, pg: EmbeddedPg, base: string): Promise<void> {
  const bin = await findPgBinDir();
  const acct = await serverAccount();
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const stop = [
    ...acct.prefix,
    join(bin, "pg_ctl"),
    "-D",
    pg.dataDir,
    "stop",
    "-s",
    "-m",
    "immediate",
  ]
    .map(q).join(" ");
  const watch = `while kill -0 ${pid} 2>/dev/null && [ -d ${q(base)} ]; do sleep 0.1; done; ` +
    `if [ -d ${q(base)} ]; then ${stop} >/dev/null 2>&1; rm -rf ${q(base)}; fi`;
  await run([
    "sh",
    "-c",
    `setsid sh -c ${q(watch)} </dev/null >/dev/null 2>&1 &`,
  ], "starting the database watchdog");
}
