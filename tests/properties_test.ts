/**
 * The property-expression parser: accepted grammar, normalised text, parameterised form, and
 * refusals (injection attempts included), in-process; then against a real `resources` table
 * with site columns, where both forms must select the same rows.
 */
import {
  checkExpression,
  type ColumnSet,
  mentionsColumn,
  type Param,
  parseExpression,
  PropertyError,
  toParameterised,
} from "../lib/properties/expr.ts";
import { columnTypes, jobColumns, resourceColumns } from "../lib/properties/columns.ts";
import { assertEquals, assertOk, assertStringIncludes, assertThrows } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import { insertResources } from "./support/fixtures.ts";

const COLS: ColumnSet = new Map(
  [
    ["resource_id", "number"],
    ["network_address", "text"],
    ["type", "text"],
    ["cpu", "number"],
    ["core", "number"],
    ["mem", "number"],
    ["host", "text"],
    ["state", "text"],
  ] as const,
);

function norm(src: string): string {
  return checkExpression(src, COLS).sql;
}

function refused(src: string, expected: string) {
  const e = assertThrows(() => parseExpression(src, COLS), PropertyError);
  assertStringIncludes(e.message, expected, `for ${JSON.stringify(src)}`);
}

Deno.test("accepted expressions are normalised", () => {
  assertEquals(norm("host='node1'"), "host = 'node1'");
  assertEquals(norm("HOST = 'node1' and cpu>=2"), "host = 'node1' AND cpu >= 2");
  assertEquals(norm("cpu != 3"), "cpu <> 3");
  assertEquals(norm("cpu <> 3 or not (mem < 1024)"), "cpu <> 3 OR NOT (mem < 1024)");
  assertEquals(norm("(a_b_c_is_not_col = 1)".replace("a_b_c_is_not_col", "core")), "core = 1");
  assertEquals(
    norm("(host = 'a' or host = 'b') and cpu = 1"),
    "(host = 'a' OR host = 'b') AND cpu = 1",
  );
  assertEquals(norm("host in ('a', 'b','c')"), "host IN ('a', 'b', 'c')");
  assertEquals(norm("cpu not in (1,2)"), "cpu NOT IN (1, 2)");
  assertEquals(norm("host like 'node%'"), "host LIKE 'node%'");
  assertEquals(norm("host not like 'n_de'"), "host NOT LIKE 'n_de'");
  assertEquals(norm("host is null"), "host IS NULL");
  assertEquals(norm("host IS NOT NULL"), "host IS NOT NULL");
  assertEquals(norm("mem > -1"), "mem > -1");
  assertEquals(norm("mem >= 2.5"), "mem >= 2.5");
  assertEquals(norm("NOT NOT cpu = 1"), "NOT NOT (cpu = 1)");
  // Literals take the column's type: numbers against text, numeric strings against numbers.
  assertEquals(norm("host = 5"), "host = '5'");
  assertEquals(norm("cpu = '5'"), "cpu = 5");
  assertEquals(norm("'node1' = host"), "'node1' = host");
  // Quotes inside strings are doubled, backslashes stay plain characters.
  assertEquals(norm("host = 'it''s'"), "host = 'it''s'");
  assertEquals(norm("host = 'a\\'"), "host = 'a\\'");
  // Operators inside strings are only characters.
  assertEquals(norm("host = 'x; drop table jobs; --'"), "host = 'x; drop table jobs; --'");
});

Deno.test("refusals say what was refused", () => {
  refused("", "empty expression");
  refused("foo = 1", "unknown property 'foo'");
  refused("host = 'a'; drop table jobs", "';' is not allowed");
  refused("host = 'a' -- comment", "comments");
  refused("host = 'a' /* c */", "comments");
  refused("host = 'a' or 1=1 --", "comments");
  refused("\"host\" = 'a'", "double quotes");
  refused("host = 'a", "unterminated string");
  refused("host = 'a''", "unterminated string");
  refused("host = 'a' or host = 'b''", "unterminated string");
  refused("host in (select network_address from resources)", "sub-queries");
  refused("(select 1) = 1", "sub-queries");
  refused("cpu = (select max(cpu) from resources)", "sub-queries");
  refused("exists (select 1)", "function calls");
  refused("host = lower('A')", "function calls");
  refused("pg_sleep(10) is null", "function calls");
  refused("cpu::text = '1'", "casts");
  refused("cpu = 1 union select 1", "unexpected input");
  refused("host = 'a' and", "incomplete expression");
  refused("host", "expected a comparison");
  refused("host = ", "incomplete expression");
  refused("cpu = 'abc'", "is a number");
  refused("cpu like '1%'", "LIKE applies to a text property");
  refused("host like 5", "LIKE needs a quoted pattern");
  refused("host = cpu", "different types");
  refused("'a' = 1", "cannot compare a string with a number");
  refused("host in (cpu)", "IN takes a list of literal values");
  refused("host = 'a' $$ x", "unexpected character '$'");
  refused("host = E'\\x41'", "unknown property 'E'");
  refused("host = 'a' or true", "unknown property 'true'");
  refused("host = 'a' ) or (1 = 1", "unexpected input");
  refused("1abc = 1", "malformed number");
  refused("host = 'a\0b'", "NUL");
  refused("x".repeat(5000), "longer than");
});

Deno.test("the parameterised form carries every literal as a parameter", () => {
  const e = parseExpression("host = 'it''s' and cpu in (1, 2) or host like 'n%'", COLS);
  const params: Param[] = ["already"];
  const text = toParameterised(e, params);
  assertEquals(
    text,
    "(host = $2 AND cpu IN ($3::numeric, $4::numeric)) OR host LIKE $5",
  );
  assertEquals(params, ["already", "it's", "1", "2", "n%"]);
  assertOk(mentionsColumn(e, "host"));
  assertOk(!mentionsColumn(e, "type"));
});

Deno.test("against a real resources table: site columns, same rows in both forms", async () => {
  await using db = await createTestDb();
  await db.sql.unsafe("ALTER TABLE resources ADD COLUMN cpu integer, ADD COLUMN host varchar(255)");
  const ids = await insertResources(db.sql, ["n1", "n2", "n3"], 2);
  await db.sql`UPDATE resources SET cpu = resource_id, host = network_address`;
  const cols = await resourceColumns(db.sql);
  assertEquals(cols.get("cpu"), "number");
  assertEquals(cols.get("host"), "text");
  assertEquals(cols.get("network_address"), "text");
  assertEquals(cols.get("resource_id"), "number");
  const cases: [string, number[]][] = [
    ["host = 'n2'", [ids[2], ids[3]]],
    ["cpu >= " + ids[4], [ids[4], ids[5]]],
    ["host in ('n1','n3') and not cpu = " + ids[0], [ids[1], ids[4], ids[5]]],
    ["network_address like 'n%' and host is not null", ids],
    ["host = 'x'' or ''1''=''1'", []],
  ];
  for (const [src, expected] of cases) {
    const f = checkExpression(src, cols);
    const viaText = await db.sql.unsafe(
      `SELECT resource_id FROM resources WHERE ${f.sql} ORDER BY resource_id`,
    );
    const params: Param[] = [];
    const text = toParameterised(f.expr, params);
    const viaParams = await db.sql.unsafe(
      `SELECT resource_id FROM resources WHERE ${text} ORDER BY resource_id`,
      params,
    );
    assertEquals(viaText.map((r) => Number(r.resource_id)), expected, src);
    assertEquals(viaParams.map((r) => Number(r.resource_id)), expected, src);
  }
  // The jobs table: an enum column (state) compares with strings in both forms.
  const jcols = await jobColumns(db.sql);
  const jf = checkExpression("state in ('Waiting', 'Hold') and job_user <> 'x'", jcols);
  const jp: Param[] = [];
  await db.sql.unsafe(`SELECT job_id FROM jobs WHERE ${toParameterised(jf.expr, jp)}`, jp);
  await db.sql.unsafe(`SELECT job_id FROM jobs WHERE ${jf.sql}`);
  // A column added later is known at once; one dropped is unknown at once.
  await db.sql.unsafe("ALTER TABLE resources DROP COLUMN host");
  const after = await resourceColumns(db.sql);
  assertThrows(() => parseExpression("host = 'n1'", after), PropertyError);
});

Deno.test("column types from the catalog: what information_schema says, in order", async () => {
  await using db = await createTestDb();
  await db.sql.unsafe(
    `ALTER TABLE resources ADD COLUMN cpu integer, ADD COLUMN host varchar(255),
       ADD COLUMN gpu_model char(8), ADD COLUMN mem double precision, ADD COLUMN "Odd" text`,
  );
  await db.sql.unsafe("ALTER TABLE resources DROP COLUMN host");
  for (const table of ["resources", "jobs", "event_logs"]) {
    const reference = await db.sql<{ column_name: string; data_type: string }[]>`
      SELECT column_name, data_type FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ${table}
      ORDER BY ordinal_position`;
    assertEquals(
      await columnTypes(db.sql, table),
      reference.map((r) => ({ column_name: r.column_name, data_type: r.data_type })),
      table,
    );
  }
  assertEquals(await columnTypes(db.sql, "no_such_table"), []);
});
