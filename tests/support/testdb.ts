/**
 * The database harness every integration test uses: each test gets its own freshly created
 * database, dropped afterwards.
 *
 * The server is `OAR_TEST_DATABASE_URL` (e.g. postgres://postgres@127.0.0.1:5432) when set.
 * Otherwise a throwaway PostgreSQL instance is started, once per test process: `deno test` runs
 * every test module in its own isolate of one process (module state is not shared, `Deno.pid`
 * is), so the first isolate that needs it starts it under a file lock in a directory named after
 * the pid, and the others find it there. No isolate can know it is the last one, so the instance
 * is stopped by the watchdog `startThrowawayPostgres` arms: it stops the server and removes its
 * directory as soon as the test process has exited, however it exits.
 *
 * Connections are opened per test and closed by `drop()`, because `deno test` fails a test that
 * leaves a socket open behind it.
 */
import { join } from "node:path";
import { Config } from "../../lib/runtime/config.ts";
import {
  connectTarget,
  type DbTarget,
  parseDbUrl,
  type Sql,
  targetUrl,
} from "../../lib/db/client.ts";
import { createSchema } from "../../lib/db/schema.ts";
import { startThrowawayPostgres } from "../../tools/embedded/postgres.ts";

/** One test's database. `await using db = await createTestDb()` drops it at the end. */
export class TestDb implements AsyncDisposable {
  #dropped = false;
  readonly #server: DbTarget;
  readonly #tempDirs: string[] = [];
  readonly #cleanups: (() => void | Promise<void>)[] = [];

  constructor(
    /** postgres:// URL of this database. */
    readonly url: string,
    readonly name: string,
    /** Configuration whose DB_* keys point at this database. */
    readonly config: Config,
    /** An open pool on this database (closed by drop()). */
    readonly sql: Sql,
    server: DbTarget,
  ) {
    this.#server = server;
  }

  /** Registers a temporary directory to remove when the database is dropped. */
  addTempDir(dir: string): void {
    this.#tempDirs.push(dir);
  }

  /** Registers something to undo when the database is dropped, before its directories go. */
  addCleanup(fn: () => void | Promise<void>): void {
    this.#cleanups.push(fn);
  }

  /** Closes our pool, disconnects everyone else, drops the database and removes temp files. */
  async drop(): Promise<void> {
    if (this.#dropped) return;
    this.#dropped = true;
    await this.sql.end({ timeout: 5 });
    await dropDatabase(this.#server, this.name);
    for (const fn of this.#cleanups) await Promise.resolve(fn()).catch(() => {});
    for (const dir of this.#tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.drop();
  }
}

let sharedServer: Promise<string> | undefined;
let counter = 0;

/** The URL of the server tests create their databases on. */
export function testServerUrl(): Promise<string> {
  const fromEnv = Deno.env.get("OAR_TEST_DATABASE_URL");
  if (fromEnv) return Promise.resolve(fromEnv);
  sharedServer ??= startSharedServer();
  return sharedServer;
}

/** Directory of this process's shared throwaway instance. */
export function sharedInstanceDir(): string {
  return join(Deno.env.get("TMPDIR") ?? "/tmp", `oar-deno-testpg-${Deno.pid}`);
}

async function startSharedServer(): Promise<string> {
  const base = sharedInstanceDir();
  await Deno.mkdir(base, { recursive: true });
  const info = join(base, "instance.json");
  using lock = await Deno.open(join(base, "lock"), { create: true, write: true });
  await lock.lock(true);
  try {
    try {
      const { url, socket } = JSON.parse(await Deno.readTextFile(info));
      // Started by another isolate of this process; it lives until the process exits. (Probe
      // it: a directory left by an earlier process with the same pid has a dead socket.)
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return url;
    } catch {
      // Not started yet (or gone): start it.
    }
    const pg = await startThrowawayPostgres({ dir: base });
    const url = pg.url();
    const socket = `${pg.socketDir}/.s.PGSQL.${pg.port}`;
    await Deno.writeTextFile(info, JSON.stringify({ url, socket }));
    return url;
  } finally {
    await lock.unlock().catch(() => {});
  }
}

async function dropDatabase(server: DbTarget, name: string): Promise<void> {
  const admin = connectTarget({ ...server, database: "postgres" }, { max: 1 });
  try {
    // WITH (FORCE) disconnects whatever a test left connected (child processes included).
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/**
 * A new, uniquely named database with OAR's schema (unless `schema: false`), and a config and
 * pool pointing at it.
 */
export async function createTestDb(opts: { schema?: boolean } = {}): Promise<TestDb> {
  const server = parseDbUrl(await testServerUrl());
  // pid + counter are unique within one isolate; the random part separates isolates of one
  // process and processes on different machines sharing a server.
  const name = `oar_test_${Deno.pid}_${++counter}_${crypto.randomUUID().slice(0, 8)}`;
  const admin = connectTarget({ ...server, database: "postgres" }, { max: 1 });
  try {
    // template0: nobody can be connected to it, which would make CREATE DATABASE fail.
    await admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const target: DbTarget = { ...server, database: name };
  const sql = connectTarget(target, { max: 4, applicationName: "oar-deno-test" });
  const config = new Config({
    DB_TYPE: "Pg",
    DB_HOSTNAME: target.host,
    DB_PORT: target.port,
    DB_BASE_NAME: name,
    DB_BASE_LOGIN: target.user,
    DB_BASE_PASSWD: target.password,
  });
  const db = new TestDb(targetUrl(target), name, config, sql, server);
  if (opts.schema !== false) {
    try {
      await createSchema(sql);
    } catch (e) {
      await db.drop();
      throw e;
    }
  }
  return db;
}

/**
 * Writes an oar.conf with the database's DB_* keys (plus `extra`) into a temporary directory
 * removed by `db.drop()`, and returns its path, for child processes run with OARCONFFILE.
 */
export async function writeConfigFile(
  db: TestDb,
  extra: Record<string, string | number> = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "oar-deno-conf-" });
  db.addTempDir(dir);
  const values: Record<string, string | number> = Object.fromEntries(db.config.entries());
  // Each test's own command server socket (almighty starts one), never the system's.
  values.COMMAND_SERVER_SOCKET = join(dir, "oar-commands.sock");
  // The tests run as root and their jobs are root's: allowed, as an admin may allow them.
  values.JOB_SYSTEM_USERS_ALLOWED = "root";
  Object.assign(values, extra);
  const lines = Object.entries(values).map(([k, v]) => {
    if (typeof v === "number") return `${k}=${v}`;
    if (v.includes('"') || v.includes("#") || v.includes("\n")) {
      throw new Error(`oar.conf cannot hold ${k}=${JSON.stringify(v)}`);
    }
    return `${k}="${v}"`;
  });
  const path = join(dir, "oar.conf");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}
