/**
 * The one place that builds PostgreSQL clients (postgres.js) from OAR's `DB_*` keys, and the
 * Deno permissions such a client needs.
 *
 * Every option postgres.js would otherwise look up in `PG*` environment variables is given
 * explicitly, so that the configuration file alone decides where we connect and a module needs
 * no `--allow-env` beyond the two variables postgres.js reads unconditionally (POSTGRES_JS_ENV).
 */
import postgres from "postgres";
import type { Config } from "../runtime/config.ts";
import { type DbTarget, dbTarget, isSocketDir, parseDbUrl, socketPath } from "./target.ts";

export * from "./target.ts";

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
