/**
 * oar-database: create, drop, reset or check OAR's database, and create its roles.
 *
 * Exit codes: 0 done (or schema complete), 1 failure (database unreachable, schema incomplete,
 * bad configuration), 2 bad arguments.
 */
import { parseArgs } from "node:util";
import { ConfigError, configLabel, loadConfig } from "../../lib/runtime/config.ts";
import {
  CONNECTION_CODES,
  connectTarget,
  type DbTarget,
  dbTarget,
  describeTarget,
  parseDbUrl,
  type Sql,
} from "../../lib/db/client.ts";
import { checkSchema, createSchema, dropSchema } from "../../lib/db/schema.ts";
import {
  checkPassword,
  DEFAULT_OWNER,
  DEFAULT_READ_ONLY,
  ensureOarRoles,
  ensureOwnedDatabase,
  grantReadOnly,
  roleExists,
} from "../../lib/db/roles.ts";
import { helpText, type OptionTable, parserOptions } from "../../lib/cli/options.ts";

export const OAR_DATABASE_OPTIONS = {
  create: {
    type: "boolean",
    help: "create the database if it does not exist, then every missing table, type, index and " +
      "default row (safe to run again)",
  },
  drop: { type: "boolean", help: "drop every OAR table and type, with all their data" },
  reset: { type: "boolean", help: "--drop, then --create" },
  check: {
    type: "boolean",
    help: 'list what is missing or different; exit 0 and print "schema complete" if nothing',
  },
  "create-roles": {
    type: "boolean",
    help: `as a superuser: create the role ${DEFAULT_OWNER} (login with a password, no other ` +
      `power) and the role ${DEFAULT_READ_ONLY} (no login; reads every table but challenges), ` +
      `set ${DEFAULT_OWNER}'s password (again, if it exists), and create the database owned by ` +
      `${DEFAULT_OWNER} if it does not exist. Then run --create as ${DEFAULT_OWNER} ` +
      `(DB_BASE_LOGIN="${DEFAULT_OWNER}") so that it owns the tables`,
  },
  password: {
    type: "string",
    arg: "PASSWORD",
    help: `the password of ${DEFAULT_OWNER} for --create-roles (default: $OAR_DB_PASSWORD; ` +
      "printable ASCII, no spaces)",
  },
  "db-url": {
    type: "string",
    arg: "URL",
    help: "use postgres://user[:password]@host[:port]/dbname instead of oar.conf (a socket " +
      "directory goes in ?host=/dir)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OAR_DATABASE_HELP = helpText(
  "oar-database",
  [
    "(--create | --drop | --reset | --check) [--db-url URL]",
    "--create-roles --db-url SUPERUSER_URL [--password PASSWORD]",
  ],
  "Manages OAR's database, the one named by the DB_* keys of oar.conf (OARCONFFILE, then " +
    "/etc/oar/oar.conf; under deno task, ./var/oar.conf before /etc/oar/oar.conf).",
  OAR_DATABASE_OPTIONS,
  `--create and --reset also let ${DEFAULT_READ_ONLY} read the tables, when that role exists.`,
);

const ACTIONS = ["create", "drop", "reset", "check", "create-roles"] as const;
type Action = typeof ACTIONS[number];

/** A failure with a message meant for the user (no stack trace). */
class Failure extends Error {}

/**
 * Where the target came from ("--db-url", or the configuration file), named with the server in
 * every failure: one run of this command has one target, set once by main.
 */
let origin = "";

/** Turns postgres.js / socket errors into one line naming the server and where it came from. */
function explain(e: unknown, t: DbTarget): string {
  const err = e as { code?: string; message?: string; name?: string };
  const code = err.code ?? err.name ?? "";
  const where = describeTarget(t) + (origin ? ` (${origin})` : "");
  if (CONNECTION_CODES.has(code)) {
    return `cannot connect to ${where}: ${err.message ?? code}`;
  }
  if (code === "3D000") return `${where}: database does not exist (run oar-database --create)`;
  if (code === "28P01" || code === "28000") return `cannot log in to ${where}: ${err.message}`;
  if (code === "42501") return `${where}: permission denied: ${err.message}`;
  return `${where}: ${err.message ?? String(e)}`;
}

/**
 * Runs `fn` connected to a maintenance database of the target's server ("postgres", else
 * "template1"), as the target's user.
 */
async function withMaintenance<T>(t: DbTarget, fn: (admin: Sql) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (const maintenance of ["postgres", "template1"]) {
    if (maintenance === t.database) continue;
    const admin = connectTarget({ ...t, database: maintenance }, { max: 1 });
    try {
      return await fn(admin);
    } catch (e) {
      lastError = e;
      // Only a missing maintenance database is worth trying the next one.
      if ((e as { code?: string }).code !== "3D000") break;
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
  throw lastError;
}

/** Creates the database itself when it does not exist, through a maintenance database. */
async function ensureDatabase(t: DbTarget): Promise<boolean> {
  try {
    return await withMaintenance(t, async (admin) => {
      const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${t.database}`;
      if (rows.length > 0) return false;
      try {
        await admin.unsafe(`CREATE DATABASE "${t.database.replaceAll('"', '""')}"`);
      } catch (e) {
        // Someone else created it meanwhile: fine, that is what we wanted.
        if ((e as { code?: string }).code === "42P04") return false;
        throw e;
      }
      return true;
    });
  } catch (e) {
    throw new Failure(`cannot create the database: ${explain(e, t)}`);
  }
}

/** --create-roles: the roles of lib/db/roles.ts, and the database owned by the owner role. */
async function createRoles(t: DbTarget, password: string): Promise<number> {
  try {
    return await withMaintenance(t, async (admin) => {
      const roles = await ensureOarRoles(admin, { dbName: t.database, password });
      console.log(
        `role "${DEFAULT_OWNER}" ${roles.ownerCreated ? "created" : "updated"} ` +
          "(login with the password given, no superuser, createdb, createrole or replication)",
      );
      console.log(
        `role "${DEFAULT_READ_ONLY}" ${roles.readOnlyCreated ? "created" : "already exists"}`,
      );
      const db = await ensureOwnedDatabase(admin, t.database, DEFAULT_OWNER);
      if (db.created) {
        console.log(`database "${t.database}" created, owned by "${DEFAULT_OWNER}"`);
      } else if (db.owner !== DEFAULT_OWNER) {
        // Changing the owner of a live database (and of its tables) is the admin's decision.
        console.log(
          `database "${t.database}" already exists, owned by "${db.owner}": left as it is ` +
            `(ALTER DATABASE and REASSIGN OWNED make "${DEFAULT_OWNER}" its owner)`,
        );
      } else {
        console.log(`database "${t.database}" already exists, owned by "${DEFAULT_OWNER}"`);
      }
      console.log(
        `next: oar-database --create with DB_BASE_LOGIN="${DEFAULT_OWNER}" and its password ` +
          "in oar.conf, so that it creates and owns the tables",
      );
      return 0;
    });
  } catch (e) {
    // Our own checks (names, not a superuser...) come as plain Errors: their message is enough.
    if (e instanceof Error && !("code" in e)) throw new Failure(e.message);
    throw new Failure(`cannot create the roles: ${explain(e, t)}`);
  }
}

/** After --create or --reset: lets the read-only role read, when an admin created it. */
async function grantIfReadOnlyRole(sql: Sql): Promise<void> {
  if (!(await roleExists(sql, DEFAULT_READ_ONLY))) return;
  await grantReadOnly(sql);
  console.log(`role "${DEFAULT_READ_ONLY}" may read every table but challenges`);
}

async function act(action: Action, t: DbTarget, password: string): Promise<number> {
  if (action === "create-roles") return await createRoles(t, password);
  if (action === "create" || action === "reset") {
    // --reset on a database that does not exist yet is a plain --create.
    if (await ensureDatabase(t)) console.log(`database "${t.database}" created`);
  }
  const sql: Sql = connectTarget(t, { max: 1, applicationName: "oar-database" });
  try {
    switch (action) {
      case "check": {
        const problems = await checkSchema(sql);
        if (problems.length === 0) {
          console.log("schema complete");
          return 0;
        }
        for (const p of problems) console.log(p);
        console.error(
          `${problems.length} problem${problems.length > 1 ? "s" : ""} in ${describeTarget(t)}`,
        );
        return 1;
      }
      case "drop":
        await dropSchema(sql);
        console.log(`OAR tables dropped from database "${t.database}"`);
        return 0;
      case "reset":
        await dropSchema(sql);
        await createSchema(sql);
        console.log(`OAR schema re-created in database "${t.database}"`);
        await grantIfReadOnlyRole(sql);
        return 0;
      case "create":
        await createSchema(sql);
        console.log(`OAR schema ready in database "${t.database}"`);
        await grantIfReadOnlyRole(sql);
        return 0;
    }
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(explain(e, t));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function mayReadPasswordEnv(): boolean {
  return Deno.permissions.querySync({ name: "env", variable: "OAR_DB_PASSWORD" }).state ===
    "granted";
}

function usageError(message: string): number {
  console.error(`oar-database: ${message}\n`);
  console.error(OAR_DATABASE_HELP);
  return 2;
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      // The values' types are the table's; parseArgs gets its own keys only.
      options: parserOptions(OAR_DATABASE_OPTIONS) as unknown as typeof OAR_DATABASE_OPTIONS,
    });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(OAR_DATABASE_HELP);
    return 0;
  }
  const chosen = ACTIONS.filter((a) => v[a]);
  if (chosen.length !== 1) {
    return usageError(
      chosen.length === 0
        ? "no action given"
        : `choose one action, not ${chosen.map((a) => `--${a}`).join(" and ")}`,
    );
  }

  let password = "";
  if (chosen[0] === "create-roles") {
    const need = `--create-roles needs the password of "${DEFAULT_OWNER}"`;
    if (v.password !== undefined) {
      password = v.password;
    } else if (!mayReadPasswordEnv()) {
      // Deno's flags for this command (lib/permissions/mod.ts) decide; say so, do not crash.
      return usageError(`${need}: --password PW (this command may not read OAR_DB_PASSWORD)`);
    } else {
      password = Deno.env.get("OAR_DB_PASSWORD") ?? "";
      if (password === "") return usageError(`${need}: --password PW or OAR_DB_PASSWORD`);
    }
    try {
      checkPassword(password);
    } catch (e) {
      return usageError((e as Error).message);
    }
  } else if (v.password !== undefined) {
    return usageError("--password goes with --create-roles only");
  }

  let target: DbTarget;
  try {
    if (v["db-url"] !== undefined) {
      target = parseDbUrl(v["db-url"]);
      origin = "--db-url";
    } else {
      const config = loadConfig();
      target = dbTarget(config);
      origin = configLabel(config);
    }
  } catch (e) {
    if (e instanceof ConfigError || v["db-url"] === undefined) {
      console.error(`oar-database: ${(e as Error).message}`);
      return 1;
    }
    return usageError((e as Error).message);
  }
  if (!target.database) {
    console.error("oar-database: no database name (DB_BASE_NAME is empty)");
    return 1;
  }

  try {
    return await act(chosen[0], target, password);
  } catch (e) {
    console.error(`oar-database: ${e instanceof Failure ? e.message : explain(e, target)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
