/**
 * oar-database as admins run it: a child process with exactly its permission flags
 * (lib/permissions/mod.ts) and an oar.conf pointing at a test database.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { runEntry } from "./support/proc.ts";
import { freePort } from "./support/ports.ts";
import { parseDbUrl } from "../lib/db/client.ts";

function cli(conf: string, ...args: string[]) {
  return runEntry("oar-database", conf, args);
}

async function tableCount(db: TestDb): Promise<number> {
  const [{ n }] = await db.sql`
    SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema()`;
  return n;
}

Deno.test("oar-database --check on an empty database lists what is missing, exit 1", async () => {
  await using db = await createTestDb({ schema: false });
  const conf = await writeConfigFile(db);
  const r = await cli(conf, "--check");
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stdout, 'missing table "jobs"');
  assertStringIncludes(r.stdout, 'missing table "resources"');
  assertOk(!r.stdout.includes("schema complete"));
});

Deno.test("oar-database --create twice, then --check: schema complete", async () => {
  await using db = await createTestDb({ schema: false });
  const conf = await writeConfigFile(db);
  for (let i = 0; i < 2; i++) {
    const r = await cli(conf, "--create");
    assertEquals(r.code, 0, r.stderr);
  }
  const r = await cli(conf, "--check");
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assertEquals(r.stdout.trim(), "schema complete");
});

Deno.test("oar-database --create creates the database itself when missing", async () => {
  await using db = await createTestDb({ schema: false });
  const name = `${db.name}_new`;
  const conf = await writeConfigFile(db, { DB_BASE_NAME: name });
  try {
    const r = await cli(conf, "--create");
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, `database "${name}" created`);
    const check = await cli(conf, "--check");
    assertEquals(check.stdout.trim(), "schema complete", check.stderr);
  } finally {
    await db.sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
});

Deno.test("oar-database drops only with --drop or --reset", async () => {
  await using db = await createTestDb();
  const conf = await writeConfigFile(db);
  await db.sql`INSERT INTO resources (network_address) VALUES ('node1')`;
  const before = await tableCount(db);

  for (const args of [[], ["--check"], ["--create"]]) {
    await cli(conf, ...args);
    assertEquals(await tableCount(db), before, `oar-database ${args.join(" ")} dropped tables`);
  }
  const [{ n }] = await db.sql`SELECT count(*) AS n FROM resources`;
  assertEquals(n, 1);

  const reset = await cli(conf, "--reset");
  assertEquals(reset.code, 0, reset.stderr);
  const [{ m }] = await db.sql`SELECT count(*) AS m FROM resources`;
  assertEquals(m, 0);
  assertEquals((await cli(conf, "--check")).code, 0);

  const drop = await cli(conf, "--drop");
  assertEquals(drop.code, 0, drop.stderr);
  assertEquals(await tableCount(db), 0);
  const check = await cli(conf, "--check");
  assertEquals(check.code, 1);
  assertStringIncludes(check.stdout, 'missing table "jobs"');
});

Deno.test("oar-database: bad arguments exit 2 with the usage on stderr", async () => {
  await using db = await createTestDb({ schema: false });
  const conf = await writeConfigFile(db);
  for (const args of [["--bogus"], [], ["--create", "--drop"], ["--check", "extra"]]) {
    const r = await cli(conf, ...args);
    assertEquals(r.code, 2, `oar-database ${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stderr, "Usage: oar-database");
    assertEquals(r.stdout, "");
  }
  const help = await cli(conf, "--help");
  assertEquals(help.code, 0);
  assertStringIncludes(help.stdout, "--create");
});

Deno.test("oar-database: an unreachable database is named, exit 1", async () => {
  await using db = await createTestDb({ schema: false });
  const port = await freePort();
  const conf = await writeConfigFile(db, { DB_HOSTNAME: "127.0.0.1", DB_PORT: port });
  const r = await cli(conf, "--check");
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, `cannot connect to database "${db.name}"`);
  assertStringIncludes(r.stderr, `127.0.0.1:${port}`);

  const sock = await Deno.makeTempDir({ prefix: "oar-test-nosock-" });
  db.addTempDir(sock);
  const conf2 = await writeConfigFile(db, { DB_HOSTNAME: sock, DB_PORT: 5432 });
  const r2 = await cli(conf2, "--create");
  assertEquals(r2.code, 1, r2.stderr);
  assertStringIncludes(r2.stderr, `${sock}/.s.PGSQL.5432`);
});

Deno.test("oar-database --db-url overrides the configuration", async () => {
  await using db = await createTestDb({ schema: false });
  // A config naming nothing reachable: only the URL can make this work.
  const conf = await writeConfigFile(db, { DB_BASE_NAME: "no_such_database" });
  const t = parseDbUrl(db.url);
  // The URL's target must be within the flags the config grants: same host or socket.
  const r = await runEntry("oar-database", conf, ["--create", "--db-url", db.url]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, `"${t.database}"`);
  assertEquals(await tableCount(db) > 20, true);
});
