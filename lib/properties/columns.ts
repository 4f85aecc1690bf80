/**
 * The columns an expression may name: read from the catalog, so that the property
 * columns a site added to `resources` (cpu, core, host, ...) are known without configuration.
 */
import type { Queryable } from "../db/client.ts";
import type { ColumnKind, ColumnSet } from "./expr.ts";

const NUMBER_TYPES = new Set([
  "smallint",
  "integer",
  "bigint",
  "numeric",
  "real",
  "double precision",
]);
const TEXT_TYPES = new Set(["character varying", "character", "text"]);

function kindOf(dataType: string): ColumnKind {
  if (NUMBER_TYPES.has(dataType)) return "number";
  if (TEXT_TYPES.has(dataType)) return "text";
  // Enum columns (jobs.state) compare with strings, as text does.
  if (dataType === "USER-DEFINED") return "text";
  return "other";
}

/**
 * Every column of a table of the current schema, in order, with information_schema's
 * `data_type` (enums are USER-DEFINED). Read from pg_catalog: information_schema.columns
 * checks privileges over every column of the database, and cost a new connection (every
 * one-shot module's, every oarsub's) 6-9 ms of PostgreSQL's CPU against 2 ms.
 */
export async function columnTypes(
  sql: Queryable,
  table: string,
): Promise<{ column_name: string; data_type: string }[]> {
  const rows = await sql<{ column_name: string; data_type: string }[]>`
    SELECT a.attname AS column_name,
      CASE WHEN t.typtype = 'e' THEN 'USER-DEFINED' ELSE format_type(a.atttypid, NULL) END
        AS data_type
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = to_regclass(format('%I.%I', current_schema(), ${table}::text))
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`;
  return rows.map((r) => ({ column_name: r.column_name, data_type: r.data_type }));
}

/** Columns of a table of the current schema, lower-case names only (the ones SQL can name bare). */
export async function tableColumns(sql: Queryable, table: string): Promise<ColumnSet> {
  const out = new Map<string, ColumnKind>();
  for (const r of await columnTypes(sql, table)) {
    if (/^[a-z_][a-z0-9_]*$/.test(r.column_name)) out.set(r.column_name, kindOf(r.data_type));
  }
  return out;
}

export function resourceColumns(sql: Queryable): Promise<ColumnSet> {
  return tableColumns(sql, "resources");
}

export function jobColumns(sql: Queryable): Promise<ColumnSet> {
  return tableColumns(sql, "jobs");
}

/**
 * Columns OAR manages itself: users may filter on them but oarnodesetting/oarproperty must not
 * set, add or remove them (`check_resource_system_property`).
 */
export const SYSTEM_PROPERTIES: ReadonlySet<string> = new Set([
  "resource_id",
  "state",
  "state_num",
  "next_state",
  "finaud_decision",
  "next_finaud_decision",
  "last_job_date",
  "suspended_jobs",
  "expiry_date",
  "scheduler_priority",
]);

/** The columns of OAR's own `resources` table (oarproperty refuses to delete them). */
export const BUILTIN_RESOURCE_COLUMNS: ReadonlySet<string> = new Set([
  "resource_id",
  "type",
  "network_address",
  "state",
  "next_state",
  "finaud_decision",
  "next_finaud_decision",
  "state_num",
  "suspended_jobs",
  "scheduler_priority",
  "cpuset",
  "besteffort",
  "deploy",
  "expiry_date",
  "desktop_computing",
  "last_job_date",
  "available_upto",
  "last_available_upto",
  "drain",
]);
