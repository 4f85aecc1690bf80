/**
 * The database layer against a real PostgreSQL: schema creation, checking and dropping, the
 * database clock, and the Deno permissions a client needs.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { Config } from "../lib/runtime/config.ts";
import { projectRoot } from "../lib/runtime/paths.ts";
import { connectUrl, dbNow, dbPermissionFlags, parseDbUrl } from "../lib/db/client.ts";
import { checkSchema, createSchema, dropSchema } from "../lib/db/schema.ts";

const FIXTURE = join(projectRoot, "tests", "fixtures", "oar3-schema-columns.tsv");
/** The spec's copy, present next to the clone in CI and on our machines. */
const SPEC = join(projectRoot, "..", "shared", "spec", "oar3-schema-columns.tsv");

function dbTest(name: string, fn: (db: TestDb) => Promise<void>, schema = true) {
  Deno.test(name, async () => {
    await using db = await createTestDb({ schema });
    await fn(db);
  });
}

function tsvRows(text: string): string[] {
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "").sort();
}

dbTest("an empty database reports what is missing; createSchema completes it", async (db) => {
  const before = await checkSchema(db.sql);
  assertOk(before.includes('missing table "jobs"'), before.join("\n"));
  assertOk(before.includes('missing table "resources"'), before.join("\n"));
  assertOk(before.some((p) => p.startsWith('missing enum type "job_state"')), before.join("\n"));
  await createSchema(db.sql);
  assertEquals(await checkSchema(db.sql), []);
}, false);

dbTest("the columns match OAR 3's schema exactly", async (db) => {
  const expected = tsvRows(await Deno.readTextFile(FIXTURE));
  const spec = await Deno.readTextFile(SPEC).catch(() => null);
  if (spec !== null) assertEquals(tsvRows(spec), expected, "tests/fixtures copy is out of date");
  const rows = await db.sql<{ t: string; c: string; d: string }[]>`
    SELECT table_name AS t, column_name AS c, data_type AS d
    FROM information_schema.columns WHERE table_schema = current_schema()`;
  assertEquals(rows.map((r) => `${r.t}\t${r.c}\t${r.d}`).sort(), expected);
});

dbTest("createSchema is idempotent and keeps data", async (db) => {
  await db.sql`INSERT INTO resources (network_address) VALUES ('node1')`;
  await createSchema(db.sql);
  await createSchema(db.sql);
  assertEquals(await checkSchema(db.sql), []);
  const [{ n }] = await db.sql`SELECT count(*) AS n FROM resources`;
  assertEquals(n, 1);
  const [{ q }] = await db.sql`SELECT count(*) AS q FROM queues`;
  assertEquals(q, 3);
});

dbTest("jobs keeps room on its pages for updates that touch no index (HOT)", async (db) => {
  const reloptions = async () =>
    (await db.sql<{ o: string[] | null }[]>`
      SELECT reloptions AS o FROM pg_class WHERE oid = 'jobs'::regclass`)[0].o;
  assertEquals(await reloptions(), ["fillfactor=70"]);
  // A database made before: createSchema sets it.
  await db.sql`ALTER TABLE jobs RESET (fillfactor)`;
  await createSchema(db.sql);
  assertEquals(await reloptions(), ["fillfactor=70"]);
});

dbTest("concurrent createSchema calls on an empty database all succeed", async (db) => {
  const pools = [0, 1, 2].map(() => connectUrl(db.url, { max: 1 }));
  try {
    await Promise.all(pools.map((p) => createSchema(p)));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
  assertEquals(await checkSchema(db.sql), []);
}, false);

dbTest("the default queues and the schema version are there", async (db) => {
  const queues = await db.sql`
    SELECT queue_name, priority, scheduler_policy, state FROM queues ORDER BY priority DESC`;
  assertEquals([...queues], [
    { queue_name: "admin", priority: 10, scheduler_policy: "kamelot", state: "Active" },
    { queue_name: "default", priority: 2, scheduler_policy: "kamelot", state: "Active" },
    { queue_name: "besteffort", priority: 0, scheduler_policy: "kamelot", state: "Active" },
  ]);
  const version = await db.sql`SELECT version FROM schema`;
  assertEquals(version.map((r) => r.version), ["3.0.0"]);
});

dbTest("checkSchema names each kind of damage", async (db) => {
  await db.sql`ALTER TABLE jobs DROP COLUMN job_name`;
  await db.sql`DROP TABLE walltime_change`;
  await db.sql`ALTER TABLE resources ALTER COLUMN cpuset TYPE text`;
  await db.sql`ALTER TABLE resources ALTER COLUMN deploy DROP DEFAULT`;
  await db.sql`DROP INDEX state_id`;
  await db.sql`DELETE FROM queues WHERE queue_name = 'besteffort'`;
  await db.sql`UPDATE schema SET version = '2.5.0'`;
  // Not damage: oarproperty adds resource properties as columns.
  await db.sql`ALTER TABLE resources ADD COLUMN cpu integer`;
  const problems = await checkSchema(db.sql);
  assertEquals(problems, [
    'table "jobs": missing column "job_name" (character varying(100))',
    'table "resources": column "cpuset" has type text, expected character varying(255)',
    `table "resources": column "deploy" has default none, expected 'NO'::character varying`,
    'missing table "walltime_change"',
    'missing index "state_id" on table "jobs" (USING btree (state, job_id))',
    'missing default queue "besteffort"',
    "schema version is 2.5.0, expected 3.0.0",
  ]);
  // The scratch schema used for the comparison is gone.
  const scratch = await db.sql`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'oar_expected%'`;
  assertEquals(scratch.length, 0);
  // createSchema repairs what IF NOT EXISTS can: the table, the index, the queue.
  await createSchema(db.sql);
  const after = await checkSchema(db.sql);
  assertEquals(after.length, 4, after.join("\n"));
});

dbTest("a missing enum value is reported", async (db) => {
  await db.sql`ALTER TABLE jobs ALTER COLUMN state DROP DEFAULT`;
  await db.sql`ALTER TABLE jobs ALTER COLUMN state TYPE text`;
  await db.sql`DROP TYPE job_state`;
  await db.sql`CREATE TYPE job_state AS ENUM ('Waiting', 'Running')`;
  await db.sql`ALTER TABLE jobs ALTER COLUMN state TYPE job_state USING state::job_state`;
  await db.sql`ALTER TABLE jobs ALTER COLUMN state SET DEFAULT 'Waiting'`;
  const problems = await checkSchema(db.sql);
  assertEquals(problems.length, 1, problems.join("\n"));
  assertStringIncludes(problems[0], 'enum type "job_state": missing values "Hold", "toLaunch"');
});

dbTest("dropSchema removes every OAR table and type, and nothing else", async (db) => {
  await db.sql`CREATE TABLE site_notes (note text)`;
  await dropSchema(db.sql);
  const left = await db.sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() ORDER BY 1`;
  assertEquals(left.map((r) => r.name), ["site_notes"]);
  const types = await db.sql`
    SELECT typname FROM pg_type WHERE typname IN ('job_state', 'resource_index')`;
  assertEquals(types.length, 0);
  await createSchema(db.sql);
  assertEquals(await checkSchema(db.sql), []);
});

dbTest("dbNow is the database clock in integer epoch seconds", async (db) => {
  const now = await dbNow(db.sql);
  assertOk(Number.isInteger(now), `not an integer: ${now}`);
  assertOk(Math.abs(now - Date.now() / 1000) < 5, `${now} is far from ${Date.now() / 1000}`);
  const inTx = await db.sql.begin((tx) => dbNow(tx));
  assertOk(inTx >= now);
});

dbTest("a client needs exactly dbPermissionFlags to reach the database", async (db) => {
  const t = parseDbUrl(db.url);
  const config = new Config({
    DB_HOSTNAME: t.host,
    DB_PORT: t.port,
    DB_BASE_NAME: t.database,
    DB_BASE_LOGIN: t.user,
    DB_BASE_PASSWD: t.password,
  });
  const probe = join(projectRoot, "tests", "fixtures", "db_probe.ts");
  const run = async (flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        ...flags,
        probe,
        JSON.stringify(Object.fromEntries(config.entries())),
      ],
      cwd: projectRoot,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  };
  const flags = dbPermissionFlags(config);
  const ok = await run(flags);
  assertEquals(ok.code, 0, ok.text);
  assertStringIncludes(ok.text, "3.0.0");
  // Each flag is needed: dropping any one of them fails with a permission error.
  for (let i = 0; i < flags.length; i++) {
    const fewer = await run(flags.filter((_, j) => j !== i));
    assertOk(fewer.code !== 0, `works without ${flags[i]}`);
    assertStringIncludes(fewer.text, "NotCapable");
  }
});
