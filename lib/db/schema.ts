/**
 * Creating, dropping and checking OAR's schema.
 *
 * `schema.sql` and `default_data.sql` are the single source of truth. To know what a complete
 * database looks like, `checkSchema` and `dropSchema` apply both files into a scratch schema
 * inside a savepoint that is always rolled back, read that schema's catalog, and compare. So the
 * checker can never drift from what `createSchema` builds, and nothing scratch ever survives.
 */
import type { Sql, TxSql } from "./client.ts";
// Text imports: the SQL travels with the module graph (no --allow-read, and `deno compile` or
// bundling carries it along).
import schemaSql from "./schema.sql" with { type: "text" };
import defaultDataSql from "./default_data.sql" with { type: "text" };

/**
 * Serialises concurrent `createSchema` calls on one database (two `oar-database --create`, or a
 * module starting while an admin runs it): `CREATE ... IF NOT EXISTS` is not safe against a
 * concurrent creator. The number is arbitrary but fixed ("OAR" in ASCII, then "db").
 */
const SCHEMA_LOCK_KEY = 0x4f4152_6462;

const files = { schema: schemaSql, data: defaultDataSql };

/**
 * Creates every missing table, type and index and inserts the default data, in one transaction.
 * Idempotent: running it on a complete database changes nothing.
 */
export async function createSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`;
    // Multi-statement text needs the simple query protocol.
    await tx.unsafe(files.schema).simple();
    await tx.unsafe(files.data).simple();
  });
}

/** Drops every OAR table and enum type (with their data). Other tables are left alone. */
export async function dropSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`;
    const expected = await expectedStructure(tx);
    const tables = [...expected.columns.keys()];
    const types = [...expected.enums.keys()];
    if (tables.length > 0) await tx`DROP TABLE IF EXISTS ${tx(tables)} CASCADE`;
    if (types.length > 0) await tx`DROP TYPE IF EXISTS ${tx(types)} CASCADE`;
  });
}

interface Column {
  type: string;
  notNull: boolean;
  default: string | null;
}

interface Index {
  table: string;
  /** Everything from "USING": method, columns and predicate; "UNIQUE " prefixed if unique. */
  def: string;
}

/** What `checkSchema` compares: one schema's catalog, with names relative to that schema. */
interface Structure {
  /** table -> column -> definition */
  columns: Map<string, Map<string, Column>>;
  /** table -> check constraint definitions */
  checks: Map<string, Set<string>>;
  indexes: Map<string, Index>;
  enums: Map<string, string[]>;
  queues: Set<string> | null;
  versions: string[] | null;
}

/**
 * Reads a schema's structure. Must run with `search_path` set to exactly that schema, so that
 * type names, sequence names in defaults and table names in index definitions come out
 * unqualified and compare equal between the real and the scratch schema.
 */
async function readStructure(tx: TxSql, schema: string): Promise<Structure> {
  const columns = new Map<string, Map<string, Column>>();
  const cols = await tx<
    { tbl: string; col: string; type: string; not_null: boolean; def: string | null }[]
  >`
    SELECT c.relname AS tbl, a.attname AS col,
      CASE WHEN t.typtype = 'e' THEN t.typname ELSE format_type(a.atttypid, a.atttypmod) END
        AS type,
      a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS def
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p')`;
  for (const r of cols) {
    if (!columns.has(r.tbl)) columns.set(r.tbl, new Map());
    columns.get(r.tbl)!.set(r.col, { type: r.type, notNull: r.not_null, default: r.def });
  }

  const checks = new Map<string, Set<string>>();
  const cons = await tx<{ tbl: string; def: string }[]>`
    SELECT c.relname AS tbl, pg_get_constraintdef(k.oid) AS def
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND k.contype = 'c'`;
  for (const r of cons) {
    if (!checks.has(r.tbl)) checks.set(r.tbl, new Set());
    checks.get(r.tbl)!.add(r.def);
  }

  const indexes = new Map<string, Index>();
  const idx = await tx<{ name: string; tbl: string; def: string; uniq: boolean }[]>`
    SELECT i.relname AS name, t.relname AS tbl, x.indisunique AS uniq,
      regexp_replace(pg_get_indexdef(i.oid), '^.* USING ', 'USING ') AS def
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = i.relnamespace
    WHERE n.nspname = ${schema}`;
  for (const r of idx) {
    indexes.set(r.name, { table: r.tbl, def: (r.uniq ? "UNIQUE " : "") + r.def });
  }

  const enums = new Map<string, string[]>();
  const ens = await tx<{ name: string; labels: string[] }[]>`
    SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
    FROM pg_type t
    JOIN pg_enum e ON e.enumtypid = t.oid
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ${schema}
    GROUP BY t.typname`;
  for (const r of ens) enums.set(r.name, r.labels);

  // Data rows, read only from tables that have the needed column (a broken schema must still
  // be checkable, not crash the checker).
  let queues: Set<string> | null = null;
  if (columns.get("queues")?.has("queue_name")) {
    const rows = await tx<{ q: string }[]>`SELECT queue_name AS q FROM queues`;
    queues = new Set(rows.map((r) => r.q));
  }
  let versions: string[] | null = null;
  if (columns.get("schema")?.has("version")) {
    const rows = await tx<{ v: string }[]>`SELECT version AS v FROM schema ORDER BY version`;
    versions = rows.map((r) => r.v);
  }
  return { columns, checks, indexes, enums, queues, versions };
}

/** Thrown inside the scratch savepoint so that postgres.js rolls it back. */
class Rollback extends Error {
  constructor(readonly structure: Structure) {
    super("rollback scratch schema");
  }
}

/**
 * The structure `createSchema` builds: both SQL files applied to a fresh scratch schema inside a
 * savepoint that is rolled back. Leaves the transaction's search_path as it found it.
 */
async function expectedStructure(tx: TxSql): Promise<Structure> {
  const [{ path }] = await tx<{ path: string }[]>`SELECT current_setting('search_path') AS path`;
  const scratch = `oar_expected_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  try {
    await tx.savepoint(async (sp) => {
      await sp`CREATE SCHEMA ${sp(scratch)}`;
      await sp`SELECT set_config('search_path', ${scratch}, true)`;
      await sp.unsafe(files.schema).simple();
      await sp.unsafe(files.data).simple();
      throw new Rollback(await readStructure(sp, scratch));
    });
  } catch (e) {
    if (e instanceof Rollback) return e.structure;
    throw e;
  } finally {
    await tx`SELECT set_config('search_path', ${path}, true)`;
  }
  throw new Error("unreachable: scratch savepoint was not rolled back");
}

/** Map entries by key, so that problems come out in a stable order. */
function sortedEntries<V>(m: Map<string, V>): [string, V][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `"a", "b"` for messages. */
function quoted(xs: Iterable<string>): string {
  return [...xs].map((x) => `"${x}"`).join(", ");
}

/** Every way `actual` falls short of `expected`, one human-readable line each. */
function compare(expected: Structure, actual: Structure): string[] {
  const problems: string[] = [];
  for (const [name, labels] of sortedEntries(expected.enums)) {
    const have = actual.enums.get(name);
    if (!have) {
      problems.push(`missing enum type "${name}" (${quoted(labels)})`);
      continue;
    }
    const missing = labels.filter((l) => !have.includes(l));
    if (missing.length > 0) {
      problems.push(
        `enum type "${name}": missing value${missing.length > 1 ? "s" : ""} ${quoted(missing)}`,
      );
    }
  }
  const missingTables = new Set<string>();
  for (const [table, cols] of sortedEntries(expected.columns)) {
    const have = actual.columns.get(table);
    if (!have) {
      missingTables.add(table);
      problems.push(`missing table "${table}"`);
      continue;
    }
    // Extra columns are fine: oarproperty adds resource properties as columns.
    for (const [col, want] of sortedEntries(cols)) {
      const got = have.get(col);
      if (!got) {
        problems.push(`table "${table}": missing column "${col}" (${want.type})`);
        continue;
      }
      if (got.type !== want.type) {
        problems.push(
          `table "${table}": column "${col}" has type ${got.type}, expected ${want.type}`,
        );
        // A different default follows from a different type; one message is enough.
        continue;
      }
      if (got.notNull !== want.notNull) {
        problems.push(
          `table "${table}": column "${col}" ${
            want.notNull ? "should be NOT NULL" : "should allow NULL"
          }`,
        );
      }
      if (got.default !== want.default) {
        problems.push(
          `table "${table}": column "${col}" has default ${got.default ?? "none"}, expected ${
            want.default ?? "none"
          }`,
        );
      }
    }
    const haveChecks = actual.checks.get(table) ?? new Set();
    for (const def of [...expected.checks.get(table) ?? []].sort()) {
      if (!haveChecks.has(def)) problems.push(`table "${table}": missing constraint ${def}`);
    }
  }
  for (const [name, want] of sortedEntries(expected.indexes)) {
    if (missingTables.has(want.table)) continue;
    const got = actual.indexes.get(name);
    if (!got) {
      problems.push(`missing index "${name}" on table "${want.table}" (${want.def})`);
    } else if (got.table !== want.table || got.def !== want.def) {
      problems.push(
        `index "${name}" is on "${got.table}" ${got.def}, expected on "${want.table}" ${want.def}`,
      );
    }
  }
  if (actual.queues && expected.queues) {
    for (const q of [...expected.queues].sort()) {
      if (!actual.queues.has(q)) problems.push(`missing default queue "${q}"`);
    }
  }
  if (actual.versions && expected.versions) {
    const want = expected.versions.join(", ");
    if (actual.versions.length === 0) {
      problems.push(`missing schema version (table "schema" is empty, expected ${want})`);
    } else if (actual.versions.join(", ") !== want) {
      problems.push(`schema version is ${actual.versions.join(", ")}, expected ${want}`);
    }
  }
  return problems;
}

/**
 * Compares the database's current schema (the first schema of its search_path, normally
 * `public`) with what `createSchema` builds. Returns one line per problem; empty means complete.
 * Changes nothing.
 */
export async function checkSchema(sql: Sql): Promise<string[]> {
  // One transaction, so that the scratch schema and the real one are read from one snapshot of
  // the catalog; it commits nothing, because the scratch savepoint is rolled back.
  return await sql.begin(async (tx) => {
    const [{ schema, path }] = await tx<{ schema: string | null; path: string }[]>`
      SELECT current_schema() AS schema, current_setting('search_path') AS path`;
    if (schema === null) {
      return [`no schema to check: search_path "${path}" names no existing schema`];
    }
    await tx`SELECT set_config('search_path', quote_ident(${schema}), true)`;
    const actual = await readStructure(tx, schema);
    await tx`SELECT set_config('search_path', ${path}, true)`;
    return compare(await expectedStructure(tx), actual);
  });
}
