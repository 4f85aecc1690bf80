/**
 * Where the configuration says the database is, and the Deno permissions a client needs to reach
 * it. Apart from the client itself (lib/db/client.ts), so that computing a module's flags
 * (lib/permissions/mod.ts, hence every `deno task`) does not load the PostgreSQL driver.
 */
import { type Config, configLabel } from "../runtime/config.ts";

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

/** Error codes of a server that cannot be reached (sockets, DNS, postgres.js's own). */
export const CONNECTION_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNRESET",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "NotFound",
  "ConnectionRefused",
]);

/** SQLSTATEs of a login refused: no such role or database, bad password, not allowed. */
const LOGIN_CODES: ReadonlySet<string> = new Set(["28000", "28P01", "3D000"]);

/**
 * One line for a failure to reach or log in to the configured database, naming the target and
 * the configuration file it came from: with several oar.conf on a machine (another OAR's
 * /etc/oar/oar.conf, the quick start's ./var/oar.conf), `role "oar" does not exist` alone does
 * not say which one was read. null for any other error (a query's own failure is not about
 * where we connected).
 */
export function describeDbFailure(e: unknown, config: Config): string | null {
  const err = e as { code?: unknown; name?: unknown; message?: unknown } | null;
  const code = String(err?.code ?? err?.name ?? "");
  const msg = String(err?.message ?? e);
  let what: string;
  if (
    CONNECTION_CODES.has(code) || /ECONNREFUSED|ENOTFOUND|CONNECT_TIMEOUT|connect ENOENT/.test(msg)
  ) {
    what = "cannot reach the";
  } else if (
    LOGIN_CODES.has(code) ||
    /password authentication failed|role ".*" does not exist|SASL/.test(msg)
  ) {
    what = "cannot log in to the";
  } else {
    return null;
  }
  let target: string;
  try {
    target = describeTarget(dbTarget(config));
  } catch (te) {
    // A DB_PORT that is not a number: still say which file to fix.
    target = `database (${(te as Error).message})`;
  }
  return `${what} ${target} (${configLabel(config)}): ${msg}`;
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
