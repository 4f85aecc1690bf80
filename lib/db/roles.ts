/**
 * The database roles of a least-privilege install:
 * - the owner (`oar`): a LOGIN role with a password and no cluster-wide power (not a superuser,
 *   cannot create databases or roles). It owns the OAR database and every table in it, which is
 *   all the daemons and the command server need: DML, and `ALTER TABLE resources ADD COLUMN` for
 *   oarproperty, which only a table's owner may do;
 * - `oar_ro`: a NOLOGIN role that can read every table except `challenges` (each job's secret and
 *   ssh private key). An admin grants it to the accounts of monitoring or accounting tools.
 *
 * deploy/db/roles.sql does the same in plain SQL for admins who prefer psql.
 */
import type { Queryable, Sql } from "./client.ts";

export const DEFAULT_OWNER = "oar";
export const DEFAULT_READ_ONLY = "oar_ro";

/**
 * Role and database names we accept. Utility statements (CREATE ROLE, GRANT...) take no query
 * parameters, so names end up in the SQL text: only plain lower-case identifiers get there, and
 * they are double-quoted as well.
 */
const NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** The password characters we accept: printable ASCII (see `scramVerifier`). */
const PASSWORD_RE = /^[\x21-\x7e]{1,1024}$/;

/** `"name"` after checking it against NAME_RE; throws a message naming what was wrong. */
export function quoteName(name: string, what: string): string {
  if (!NAME_RE.test(name)) {
    throw new Error(
      `invalid ${what} "${name}": use 1 to 63 lower-case letters, digits and underscores, ` +
        "not starting with a digit",
    );
  }
  return `"${name}"`;
}

/** Throws unless `password` is printable ASCII without spaces, 1 to 1024 characters. */
export function checkPassword(password: string): void {
  if (!PASSWORD_RE.test(password)) {
    throw new Error(
      password === ""
        ? "empty database password"
        : "invalid database password: use 1 to 1024 printable ASCII characters, no spaces",
    );
  }
}

/**
 * A random password: 24 bytes (192 bits) in base64url, so it can stand in an oar.conf value
 * (`KEY="value"`: no quotes, `#` or newline) and in a URL unescaped.
 */
export function generatePassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(text)));
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 / RFC 7677, in the
 * format of pg_authid.rolpassword). `ALTER ROLE ... PASSWORD` given a verifier stores it as is,
 * so the clear password never reaches the server: not its log (log_statement = ddl would write
 * the statement), not pg_stat_activity. This is what psql's \password does too.
 *
 * Clients apply SASLprep to the password first; for printable ASCII that changes nothing, which
 * is why `checkPassword` allows only that.
 */
export async function scramVerifier(
  password: string,
  opts: { iterations?: number; salt?: Uint8Array } = {},
): Promise<string> {
  checkPassword(password);
  // PostgreSQL's own defaults (scram_iterations, 16-byte salt).
  const iterations = opts.iterations ?? 4096;
  const salt = (opts.salt ?? crypto.getRandomValues(new Uint8Array(16))) as Uint8Array<ArrayBuffer>;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256),
  );
  const clientKey = await hmac(salted, "Client Key");
  const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
  const serverKey = await hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${base64(salt)}$${base64(storedKey)}:${base64(serverKey)}`;
}

export interface OarRolesOptions {
  /** The OAR database: when it exists, the read-only role is given CONNECT on it. */
  dbName: string;
  /** Default "oar". */
  owner?: string;
  password: string;
  /** Default "oar_ro". */
  readOnly?: string;
}

/** CREATE ROLE, taking "already exists" (a concurrent creator) as success. */
async function createRoleIfAbsent(admin: Sql, name: string, quoted: string, attrs: string) {
  const [found] = await admin`SELECT 1 FROM pg_roles WHERE rolname = ${name}`;
  if (found) return false;
  try {
    await admin.unsafe(`CREATE ROLE ${quoted} ${attrs}`);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "42710") return false;
    throw e;
  }
}

/**
 * Run as a superuser: creates the owner and read-only roles when
 * absent, and (re)sets the owner's password and attributes each time, so that the password in
 * oar.conf and the one in the database can never disagree. Idempotent.
 */
export async function ensureOarRoles(
  admin: Sql,
  opts: OarRolesOptions,
): Promise<{ ownerCreated: boolean; readOnlyCreated: boolean }> {
  const owner = opts.owner ?? DEFAULT_OWNER;
  const readOnly = opts.readOnly ?? DEFAULT_READ_ONLY;
  const qOwner = quoteName(owner, "role name");
  const qReadOnly = quoteName(readOnly, "role name");
  const qDb = quoteName(opts.dbName, "database name");
  checkPassword(opts.password);
  if (owner === readOnly) throw new Error(`the owner and read-only roles are both "${owner}"`);
  const [{ me, sup }] = await admin<{ me: string; sup: boolean }[]>`
    SELECT current_user AS me, rolsuper AS sup FROM pg_roles WHERE rolname = current_user`;
  // CREATEROLE alone would not do: only a superuser may set NOREPLICATION and NOBYPASSRLS.
  if (!sup) throw new Error(`creating OAR's roles needs a superuser; "${me}" is not one`);
  if (owner === me) {
    // The attributes below would take the superuser's powers away from the session running this.
    throw new Error(`the owner role "${owner}" is the role running this; connect as another one`);
  }

  // Enforced on an existing role too: its password goes into a file the daemons read, so it
  // must be unable to do more than run OAR's database.
  const attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
  const ownerCreated = await createRoleIfAbsent(admin, owner, qOwner, attrs);
  // Single-quoted literal: the verifier is base64, digits, "$" and ":" only.
  const verifier = await scramVerifier(opts.password);
  await admin.unsafe(`ALTER ROLE ${qOwner} WITH ${attrs} PASSWORD '${verifier}'`);

  const readOnlyCreated = await createRoleIfAbsent(
    admin,
    readOnly,
    qReadOnly,
    "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
  );
  const [db] = await admin`SELECT 1 FROM pg_database WHERE datname = ${opts.dbName}`;
  // PUBLIC has CONNECT by default, but hardened servers revoke it.
  if (db) await admin.unsafe(`GRANT CONNECT ON DATABASE ${qDb} TO ${qReadOnly}`);
  return { ownerCreated, readOnlyCreated };
}

/** True when the role exists. */
export async function roleExists(sql: Queryable, name: string): Promise<boolean> {
  const [r] = await sql`SELECT 1 FROM pg_roles WHERE rolname = ${name}`;
  return r !== undefined;
}

/**
 * Run in the OAR database once its schema exists, as the tables' owner or a superuser: lets
 * `readOnly` read every table of schema public except `challenges`, now and (through default
 * privileges) the tables the owner creates later. Idempotent.
 */
export async function grantReadOnly(
  sql: Sql,
  opts: { readOnly?: string } = {},
): Promise<void> {
  const qReadOnly = quoteName(opts.readOnly ?? DEFAULT_READ_ONLY, "role name");
  await sql.begin(async (tx) => {
    // Default privileges belong to the role that will create the tables: the one owning them
    // now (checked like any name, since it goes into the SQL text).
    const [jobs] = await tx<{ owner: string }[]>`
      SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'jobs'`;
    if (!jobs) throw new Error("no table public.jobs: create OAR's schema first");
    const qOwner = quoteName(jobs.owner, "owner of table jobs");
    await tx.unsafe(`GRANT USAGE ON SCHEMA public TO ${qReadOnly}`);
    await tx.unsafe(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${qReadOnly}`);
    await tx.unsafe(`REVOKE ALL ON TABLE public.challenges FROM ${qReadOnly}`);
    await tx.unsafe(
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${qOwner} IN SCHEMA public ` +
        `GRANT SELECT ON TABLES TO ${qReadOnly}`,
    );
  });
}

/**
 * Run as a superuser: creates `dbName` owned by `owner` when absent, so that the owner (who may
 * not create databases) can then create the schema in it and own every table. An existing
 * database is left as it is. Returns whether it was created, and its owner and whether that owner
 * is a superuser (an install made before the owner role existed).
 */
export async function ensureOwnedDatabase(
  admin: Sql,
  dbName: string,
  owner: string = DEFAULT_OWNER,
): Promise<{ created: boolean; owner: string; ownerIsSuperuser: boolean }> {
  const qDb = quoteName(dbName, "database name");
  const qOwner = quoteName(owner, "role name");
  let created = false;
  if (!(await databaseOwner(admin, dbName))) {
    try {
      await admin.unsafe(`CREATE DATABASE ${qDb} OWNER ${qOwner}`);
      created = true;
    } catch (e) {
      // Created meanwhile by someone else: what it is, we report below.
      if ((e as { code?: string }).code !== "42P04") throw e;
    }
  }
  const found = await databaseOwner(admin, dbName);
  if (!found) throw new Error(`database "${dbName}" vanished while being created`);
  return { created, ...found };
}

/** The owner of a database and whether it is a superuser; null when there is no such database. */
export async function databaseOwner(
  sql: Queryable,
  dbName: string,
): Promise<{ owner: string; ownerIsSuperuser: boolean } | null> {
  const [r] = await sql<{ owner: string; sup: boolean }[]>`
    SELECT r.rolname AS owner, r.rolsuper AS sup
    FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
    WHERE d.datname = ${dbName}`;
  return r ? { owner: r.owner, ownerIsSuperuser: r.sup } : null;
}
