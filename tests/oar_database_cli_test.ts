/**
 * oar-database as admins run it: a child process with exactly its permission flags
 * (lib/permissions/mod.ts) and an oar.conf pointing at a test database.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { runEntry } from "./support/proc.ts";
import { freePort } from "./support/ports.ts";
import { connectUrl, parseDbUrl } from "../lib/db/client.ts";
import { generatePassword } from "../lib/db/roles.ts";
import { startThrowawayPostgres } from "../tools/embedded/postgres.ts";

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

/**
 * --create-roles makes cluster-wide roles with fixed names (oar, oar_ro), so it runs on a
 * throwaway instance of its own, never on the shared test server. That instance is the embedded
 * kind: the superuser is trusted on the socket, every other role needs its password.
 */
Deno.test("oar-database --create-roles, then --create as oar: oar owns it all, oar_ro reads", async () => {
  const pg = await startThrowawayPostgres();
  const dir = await Deno.makeTempDir({ prefix: "oar-deno-conf-" });
  const password = generatePassword();
  const su = connectUrl(pg.url("postgres"), { max: 1 });
  try {
    const conf = `${dir}/oar.conf`;
    const values = {
      DB_HOSTNAME: pg.socketDir,
      DB_PORT: pg.port,
      DB_BASE_NAME: "oar",
      DB_BASE_LOGIN: "oar",
      DB_BASE_PASSWD: password,
    };
    await Deno.writeTextFile(
      conf,
      Object.entries(values).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n",
    );
    const superUrl = pg.url("oar");

    // Bad input first: nothing may be created by any of these.
    for (
      const [args, message] of [
        [["--create-roles", "--db-url", superUrl], "needs the password"],
        [["--create-roles", "--db-url", superUrl, "--password", "has space"], "invalid"],
        [["--check", "--password", password], "with --create-roles only"],
      ] as const
    ) {
      const r = await runEntry("oar-database", conf, [...args]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, message);
    }
    const roles = await runEntry("oar-database", conf, [
      "--create-roles",
      "--db-url",
      superUrl,
      "--password",
      password,
    ]);
    assertEquals(roles.code, 0, roles.stderr);
    assertStringIncludes(roles.stdout, 'role "oar" created');
    assertStringIncludes(roles.stdout, 'database "oar" created, owned by "oar"');

    // Not a superuser: --create-roles is refused with what to do.
    const asOar = await runEntry("oar-database", conf, [
      "--create-roles",
      "--db-url",
      `postgres://oar:${password}@localhost:${pg.port}/oar?host=${
        encodeURIComponent(pg.socketDir)
      }`,
      "--password",
      password,
    ]);
    assertEquals(asOar.code, 1, asOar.stdout + asOar.stderr);
    assertStringIncludes(asOar.stderr, 'needs a superuser; "oar" is not one');

    // The admin's next step: --create as oar, from oar.conf.
    const create = await runEntry("oar-database", conf, ["--create"]);
    assertEquals(create.code, 0, create.stderr);
    assertStringIncludes(create.stdout, 'role "oar_ro" may read');
    assertEquals(
      (await runEntry("oar-database", conf, ["--check"])).stdout.trim(),
      "schema complete",
    );

    const db = connectUrl(pg.url("oar"), { max: 1 });
    try {
      const [{ n }] = await db`
        SELECT count(*)::int AS n FROM pg_tables
        WHERE schemaname = 'public' AND tableowner <> 'oar'`;
      assertEquals(n, 0);
      const [grants] = await db`
        SELECT has_table_privilege('oar_ro', 'jobs', 'SELECT') AS jobs,
          has_table_privilege('oar_ro', 'challenges', 'SELECT') AS challenges,
          has_table_privilege('oar_ro', 'jobs', 'INSERT') AS insert`;
      assertEquals({ ...grants }, { jobs: true, challenges: false, insert: false });
    } finally {
      await db.end();
    }

    // Run again with the password in OAR_DB_PASSWORD (kept out of `ps`): the roles exist, the
    // password is set again, and the old one no longer logs in.
    const again = await runEntry("oar-database", conf, ["--create-roles", "--db-url", superUrl], {
      env: { OAR_DB_PASSWORD: generatePassword() },
    });
    assertEquals(again.code, 0, again.stderr);
    const stale = await runEntry("oar-database", conf, ["--check"]);
    assertEquals(stale.code, 1, stale.stdout);
    assertStringIncludes(stale.stderr, "cannot log in");
  } finally {
    await su.end();
    await Deno.remove(dir, { recursive: true });
    await pg.stop();
  }
});
