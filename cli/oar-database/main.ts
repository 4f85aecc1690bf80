/**
 * oar-database: create, drop, reset or check OAR's database.
 *
 * Exit codes: 0 done (or schema complete), 1 failure (database unreachable, schema incomplete,
 * bad configuration), 2 bad arguments.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../../lib/runtime/config.ts";
import {
  connectTarget,
  type DbTarget,
  dbTarget,
  describeTarget,
  parseDbUrl,
  type Sql,
} from "../../lib/db/client.ts";
import { checkSchema, createSchema, dropSchema } from "../../lib/db/schema.ts";

const USAGE = `Usage: oar-database (--create | --drop | --reset | --check) [--db-url URL]

Manages OAR's database, the one named by the DB_* keys of oar.conf (OARCONFFILE, then
/etc/oar/oar.conf).

  --create        create the database if it does not exist, then every missing table, type,
                  index and default row (safe to run again)
  --drop          drop every OAR table and type, with all their data
  --reset         --drop, then --create
  --check         list what is missing or different; exit 0 and print "schema complete" if nothing
  --db-url URL    use postgres://user[:password]@host[:port]/dbname instead of oar.conf
                  (a socket directory goes in ?host=/dir)
  -h, --help      show this help
`;

const ACTIONS = ["create", "drop", "reset", "check"] as const;
type Action = typeof ACTIONS[number];

/** A failure with a message meant for the user (no stack trace). */
class Failure extends Error {}

const CONNECTION_CODES = new Set([
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

/** Turns postgres.js / socket errors into one line naming the server. */
function explain(e: unknown, t: DbTarget): string {
  const err = e as { code?: string; message?: string; name?: string };
  const code = err.code ?? err.name ?? "";
  const where = describeTarget(t);
  if (CONNECTION_CODES.has(code)) {
    return `cannot connect to ${where}: ${err.message ?? code}`;
  }
  if (code === "3D000") return `${where}: database does not exist (run oar-database --create)`;
  if (code === "28P01" || code === "28000") return `cannot log in to ${where}: ${err.message}`;
  if (code === "42501") return `${where}: permission denied: ${err.message}`;
  return `${where}: ${err.message ?? String(e)}`;
}

/** Creates the database itself when it does not exist, through a maintenance database. */
async function ensureDatabase(t: DbTarget): Promise<boolean> {
  let lastError: unknown;
  for (const maintenance of ["postgres", "template1"]) {
    if (maintenance === t.database) continue;
    const admin = connectTarget({ ...t, database: maintenance }, { max: 1 });
    try {
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
    } catch (e) {
      lastError = e;
      // Only a missing maintenance database is worth trying the next one.
      if ((e as { code?: string }).code !== "3D000") break;
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
  if (lastError) throw new Failure(`cannot create the database: ${explain(lastError, t)}`);
  return false;
}

async function act(action: Action, t: DbTarget): Promise<number> {
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
        return 0;
      case "create":
        await createSchema(sql);
        console.log(`OAR schema ready in database "${t.database}"`);
        return 0;
    }
  } catch (e) {
    if (e instanceof Failure) throw e;
    throw new Failure(explain(e, t));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function usageError(message: string): number {
  console.error(`oar-database: ${message}\n`);
  console.error(USAGE);
  return 2;
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        create: { type: "boolean" },
        drop: { type: "boolean" },
        reset: { type: "boolean" },
        check: { type: "boolean" },
        "db-url": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return usageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
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

  let target: DbTarget;
  try {
    target = v["db-url"] !== undefined ? parseDbUrl(v["db-url"]) : dbTarget(loadConfig());
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
    return await act(chosen[0], target);
  } catch (e) {
    console.error(`oar-database: ${e instanceof Failure ? e.message : explain(e, target)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
