/**
 * The one place that builds PostgreSQL clients (postgres.js) from OAR's `DB_*` keys, and the
 * Deno permissions such a client needs.
 *
 * Every option postgres.js would otherwise look up in `PG*` environment variables is given
 * explicitly, so that the configuration file alone decides where we connect and a module needs
 * no `--allow-env` beyond the two variables postgres.js reads unconditionally (POSTGRES_JS_ENV).
 */
import postgres from "postgres";
import type { Config } from "../config.ts";

/** A pooled client (tagged-template SQL). */
export type Sql = postgres.Sql;
/** The client handed to `sql.begin(...)` callbacks. */
export type TxSql = postgres.TransactionSql;
/** Anything that runs queries: a pool, a reserved connection or a transaction. */
export type Queryable = Sql | TxSql;

export interface ConnectOptions {
  /** Pool size; one-shot modules want 1-2, daemons a few. Default 4. */
  max?: number;
  /** Shown in pg_stat_activity, so an admin can tell modules apart. Default "oar-deno". */
  applicationName?: string;
  /** Seconds an idle pooled connection is kept. Default 30. */
  idleTimeout?: number;
  /** Seconds allowed to open a connection. Default 10. */
  connectTimeout?: number;
}

/** Where a configuration points: enough to connect and to name the server in messages. */
export interface DbTarget {
  /** TCP host name, or the directory holding the server's unix socket. */
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** True when DB_HOSTNAME names a socket directory (libpq's rule: a leading slash). */
export function isSocketDir(host: string): boolean {
  return host.startsWith("/");
}

/** The unix socket file PostgreSQL creates in `dir` for `port`. */
export function socketPath(dir: string, port: number): string {
  return `${dir.replace(/\/+$/, "")}/.s.PGSQL.${port}`;
}

/** Reads the DB_* keys of a configuration. */
export function dbTarget(config: Config): DbTarget {
  return {
    host: config.str("DB_HOSTNAME"),
    port: config.int("DB_PORT"),
    database: config.str("DB_BASE_NAME"),
    user: config.str("DB_BASE_LOGIN"),
    password: config.str("DB_BASE_PASSWD"),
  };
}

/** "host:port" or "socket /dir/.s.PGSQL.port", for error messages. */
export function describeTarget(t: DbTarget): string {
  const where = isSocketDir(t.host)
    ? `socket ${socketPath(t.host, t.port)}`
    : `${t.host}:${t.port}`;
  return `database "${t.database}" as "${t.user}" at ${where}`;
}

/**
 * Parses a `postgres://user:pass@host:port/db` URL into a target. A socket directory can be
 * given as `?host=/dir` (libpq's form) or as a percent-encoded host (`%2Fdir`).
 */
export function parseDbUrl(url: string): DbTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid database URL "${url}"`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new Error(`invalid database URL "${url}": expected postgres://`);
  }
  const hostParam = u.searchParams.get("host");
  const host = hostParam ?? decodeURIComponent(u.hostname || "localhost");
  const user = decodeURIComponent(u.username || "postgres");
  return {
    host,
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.replace(/^\//, "")) || user,
    user,
    password: decodeURIComponent(u.password),
  };
}

/** The URL form of a target (socket directories go in `?host=`). */
export function targetUrl(t: DbTarget): string {
  const auth = encodeURIComponent(t.user) +
    (t.password ? `:${encodeURIComponent(t.password)}` : "");
  const db = encodeURIComponent(t.database);
  if (isSocketDir(t.host)) {
    return `postgres://${auth}@localhost:${t.port}/${db}?host=${encodeURIComponent(t.host)}`;
  }
  return `postgres://${auth}@${t.host}:${t.port}/${db}`;
}

/** A client for an explicit target. */
export function connectTarget(t: DbTarget, opts: ConnectOptions = {}): Sql {
  const password = t.password;
  return postgres({
    host: isSocketDir(t.host) ? "localhost" : t.host,
    port: t.port,
    // postgres.js would derive this itself from a host containing "/", but only after reading
    // PGHOST and friends; giving it outright keeps socket and TCP setups alike.
    path: isSocketDir(t.host) ? socketPath(t.host, t.port) : undefined,
    database: t.database,
    username: t.user,
    // A function, because an empty string would make postgres.js fall back to $PGPASSWORD
    // (needing --allow-env and letting the environment override oar.conf).
    pass: () => password,
    max: opts.max ?? 4,
    idle_timeout: opts.idleTimeout ?? 30,
    connect_timeout: opts.connectTimeout ?? 10,
    // The remaining options are set only so postgres.js does not consult PG* variables.
    ssl: false,
    sslnegotiation: null,
    max_lifetime: null,
    max_pipeline: 100,
    backoff: (attempt: number) => (0.5 + Math.random() / 2) * Math.min(3 ** attempt / 100, 20),
    keep_alive: 60,
    prepare: true,
    debug: false,
    fetch_types: true,
    publications: "alltables",
    target_session_attrs: undefined,
    // OAR's schema has no bigint beyond ids and counters that fit a double; numbers are easier
    // for every caller than postgres.js's default of strings for int8.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number | bigint) => x.toString(),
        parse: (x: string) => Number(x),
      },
    },
    // JIT compilation only ever cost us: our queries are short, and PostgreSQL spent ~300 ms
    // compiling the meta-scheduler's launch query (measured 483 ms → 9-44 ms without it).
    connection: { application_name: opts.applicationName ?? "oar-deno", jit: "off" },
    // Idempotent DDL ("already exists, skipping") and the like would otherwise go to stdout.
    onnotice: () => {},
  } as postgres.Options<Record<string, postgres.PostgresType>>) as unknown as Sql;
}

/** A client for the database a configuration names. */
export function connect(config: Config, opts: ConnectOptions = {}): Sql {
  return connectTarget(dbTarget(config), opts);
}

/** A client for a `postgres://` URL (tests, `oar-database --db-url`). */
export function connectUrl(url: string, opts: ConnectOptions = {}): Sql {
  return connectTarget(parseDbUrl(url), opts);
}

/** The database clock, in integer epoch seconds (OAR stores every time this way). */
export async function dbNow(sql: Queryable): Promise<number> {
  const [row] = await sql`SELECT EXTRACT(EPOCH FROM current_timestamp)::bigint AS now`;
  return Number(row.now);
}

/**
 * Environment variables postgres.js reads even when every option is given: it builds the
 * startup packet from `PGAPPNAME || "postgres.js"` before applying ours, and falls back to
 * PGTARGETSESSIONATTRS when target_session_attrs is unset (setting it instead would make every
 * connection check the server's read-only state).
 */
export const POSTGRES_JS_ENV = ["PGAPPNAME", "PGTARGETSESSIONATTRS"] as const;

/**
 * The tightest Deno flags that let a module reach the configured database through
 * `connect(config)`, as measured under Deno 2.9 with postgres.js 3.4:
 * - TCP: `--allow-net=<host>:<port>` (the host exactly as configured; Deno resolves it itself);
 * - unix socket: `--allow-net=unix:<socket>` plus `--allow-read` and `--allow-write` on the
 *   socket file (Deno's node:net checks all three before connecting);
 * - always `--allow-env` for POSTGRES_JS_ENV.
 * No --allow-sys: postgres.js asks the OS for the user name only when none is configured.
 */
export function dbPermissionFlags(config: Config): string[] {
  return targetPermissionFlags(dbTarget(config));
}

export function targetPermissionFlags(t: DbTarget): string[] {
  const env = `--allow-env=${POSTGRES_JS_ENV.join(",")}`;
  if (isSocketDir(t.host)) {
    const sock = socketPath(t.host, t.port);
    return [`--allow-net=unix:${sock}`, `--allow-read=${sock}`, `--allow-write=${sock}`, env];
  }
  const host = t.host.includes(":") && !t.host.startsWith("[") ? `[${t.host}]` : t.host;
  return [`--allow-net=${host}:${t.port}`, env];
}
