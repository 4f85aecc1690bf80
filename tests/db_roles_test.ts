/**
 * lib/db/roles.ts on the test server: roles are cluster-wide, so every test uses roles named
 * with a random suffix and drops them in `finally`, which keeps it safe beside other tests.
 */
import { assertEquals, assertOk, assertRejects } from "./support/assert.ts";
import { createTestDb, testServerUrl } from "./support/testdb.ts";
import { connectTarget, parseDbUrl, type Sql } from "../lib/db/client.ts";
import { createSchema } from "../lib/db/schema.ts";
import { startThrowawayPostgres } from "../tools/embedded/postgres.ts";
import {
  checkPassword,
  ensureOarRoles,
  generatePassword,
  grantReadOnly,
  quoteName,
  scramVerifier,
} from "../lib/db/roles.ts";

function suffix(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}

async function adminSql(): Promise<Sql> {
  return connectTarget({ ...parseDbUrl(await testServerUrl()), database: "postgres" }, { max: 1 });
}

/**
 * Drops the roles after taking back what they own or were granted in `dbNames` and in the
 * shared catalog (DROP ROLE refuses otherwise). Fresh superuser connections: a test's own may be
 * left under SET ROLE by a failure.
 */
async function dropRoles(roles: string[], dbNames: string[]): Promise<void> {
  const server = parseDbUrl(await testServerUrl());
  for (const database of new Set(["postgres", ...dbNames])) {
    const sql = connectTarget({ ...server, database }, { max: 1 });
    try {
      for (const r of roles) {
        const [found] = await sql`SELECT 1 FROM pg_roles WHERE rolname = ${r}`;
        if (found) await sql.unsafe(`DROP OWNED BY "${r}" CASCADE`);
      }
    } finally {
      await sql.end();
    }
  }
  const admin = await adminSql();
  try {
    // DROP OWNED leaves databases alone: give them back before the test database is dropped.
    const owned = await admin<{ datname: string }[]>`
      SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = ANY(${roles})`;
    for (const { datname } of owned) {
      await admin.unsafe(`ALTER DATABASE "${datname}" OWNER TO CURRENT_USER`);
    }
    for (const r of roles) await admin.unsafe(`DROP ROLE IF EXISTS "${r}"`);
  } finally {
    await admin.end();
  }
}

Deno.test("ensureOarRoles: a password-only owner and a NOLOGIN reader, idempotent", async () => {
  const owner = `oar_t_${suffix()}`;
  const readOnly = `oar_ro_t_${suffix()}`;
  const admin = await adminSql();
  try {
    const first = await ensureOarRoles(admin, {
      dbName: "postgres",
      owner,
      readOnly,
      password: "first-Secret1",
    });
    assertEquals(first, { ownerCreated: true, readOnlyCreated: true });
    const second = await ensureOarRoles(admin, {
      dbName: "postgres",
      owner,
      readOnly,
      password: "second-Secret2",
    });
    assertEquals(second, { ownerCreated: false, readOnlyCreated: false });

    const rows = await admin`
      SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,
        rolbypassrls, rolpassword
      FROM pg_authid WHERE rolname IN (${owner}, ${readOnly}) ORDER BY rolname = ${owner} DESC`;
    const [o, r] = rows;
    assertEquals(
      [o.rolcanlogin, o.rolsuper, o.rolcreatedb, o.rolcreaterole, o.rolreplication, o.rolbypassrls],
      [true, false, false, false, false, false],
    );
    assertEquals([r.rolcanlogin, r.rolsuper, r.rolpassword], [false, false, null]);
    // The stored verifier is the second password's: recomputed from its salt, it is identical.
    const stored = String(o.rolpassword);
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$/.exec(stored);
    assertOk(m, stored);
    const salt = Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
    assertEquals(await scramVerifier("second-Secret2", { salt }), stored);
    assertOk(await scramVerifier("first-Secret1", { salt }) !== stored);

    // An existing owner that was given powers loses them at the next ensure.
    await admin.unsafe(`ALTER ROLE "${owner}" CREATEDB CREATEROLE`);
    await ensureOarRoles(admin, { dbName: "postgres", owner, readOnly, password: "x-Secret3" });
    const [again] = await admin`
      SELECT rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = ${owner}`;
    assertEquals([again.rolcreatedb, again.rolcreaterole], [false, false]);
  } finally {
    await admin.end();
    await dropRoles([owner, readOnly], []);
  }
});

Deno.test("ensureOarRoles refuses unsafe names and passwords before touching anything", async () => {
  const admin = await adminSql();
  try {
    for (
      const opts of [
        { owner: 'oar"; DROP ROLE postgres; --', password: "pw-12345" },
        { owner: "Oar", password: "pw-12345" },
        { readOnly: "x y", password: "pw-12345" },
        { dbName: "a'b", password: "pw-12345" },
        { password: "" },
        { password: "it's got spaces" },
        { password: "tab\there" },
        { owner: "postgres", password: "pw-12345" },
        { owner: "same_name", readOnly: "same_name", password: "pw-12345" },
      ]
    ) {
      const e = await assertRejects(() =>
        ensureOarRoles(
          admin,
          { dbName: "postgres", ...opts } as Parameters<
            typeof ensureOarRoles
          >[1],
        )
      );
      assertOk(/invalid|empty|both|running this/.test(e.message), e.message);
    }
    const [{ n }] =
      await admin`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'same_name'`;
    assertEquals(n, 0);
  } finally {
    await admin.end();
  }
});

Deno.test("name and password checks; generated passwords fit oar.conf and are distinct", () => {
  assertEquals(quoteName("oar_ro", "role"), '"oar_ro"');
  for (const bad of ["", "1abc", "a-b", "a".repeat(64), "é", 'a"b']) {
    let threw = false;
    try {
      quoteName(bad, "role");
    } catch {
      threw = true;
    }
    assertOk(threw, `accepted ${JSON.stringify(bad)}`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const p = generatePassword();
    // 24 random bytes: 192 bits, 32 characters of base64url.
    assertOk(/^[A-Za-z0-9_-]{32}$/.test(p), p);
    checkPassword(p);
    seen.add(p);
  }
  assertEquals(seen.size, 50);
});

Deno.test("grantReadOnly: every table but challenges, and tables created later", async () => {
  const owner = `oar_t_${suffix()}`;
  const readOnly = `oar_ro_t_${suffix()}`;
  await using db = await createTestDb({ schema: false });
  const admin = await adminSql();
  try {
    const password = generatePassword();
    await ensureOarRoles(admin, { dbName: db.name, owner, readOnly, password });
    // Owned by the owner role, which then creates the schema: as the embedded default does (on
    // PostgreSQL 15+, schema public belongs to the database's owner).
    await db.sql.unsafe(`ALTER DATABASE "${db.name}" OWNER TO "${owner}"`);
    const server = parseDbUrl(await testServerUrl());
    const asOwner = connectTarget({ ...server, database: db.name, user: owner, password }, {
      max: 1,
    });
    try {
      await createSchema(asOwner);
      await grantReadOnly(asOwner, { readOnly });
      // Twice: idempotent.
      await grantReadOnly(asOwner, { readOnly });
      await asOwner`CREATE TABLE added_later (v int)`;
    } finally {
      await asOwner.end();
    }
    const [{ owns }] = await db.sql`
      SELECT tableowner = ${owner} AS owns FROM pg_tables WHERE tablename = 'jobs'`;
    assertOk(owns);

    const reader = await db.sql.reserve();
    try {
      await reader.unsafe(`SET ROLE "${readOnly}"`);
      await reader`SELECT count(*) FROM jobs`;
      await reader`SELECT count(*) FROM resources`;
      await reader`SELECT count(*) FROM added_later`;
      const denied = await assertRejects(() => reader`SELECT count(*) FROM challenges`);
      assertEquals((denied as { code?: string }).code, "42501");
      const noWrite = await assertRejects(() => reader`DELETE FROM jobs`);
      assertEquals((noWrite as { code?: string }).code, "42501");
    } finally {
      await reader.unsafe("RESET ROLE").catch(() => {});
      reader.release();
    }
  } finally {
    await admin.end();
    await dropRoles([owner, readOnly], [db.name]);
  }
});

/** psql on the PATH (deploy/db/roles.sql is a psql script). */
function hasPsql(): boolean {
  try {
    return new Deno.Command("psql", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "deploy/db/roles.sql through psql: the same roles and grants as oar-database",
  ignore: !hasPsql(),
  fn: async () => {
    // Fixed role names (oar, oar_ro): an instance of its own, never the shared server.
    const pg = await startThrowawayPostgres();
    const psql = async (...args: string[]) => {
      const out = await new Deno.Command("psql", {
        args: ["-X", "-q", "-h", pg.socketDir, "-p", String(pg.port), "-U", pg.superuser, ...args],
        cwd: new URL("../", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, out: d.decode(out.stdout) + d.decode(out.stderr) };
    };
    try {
      const password = generatePassword();
      const first = await psql("-v", `password=${password}`, "-f", "deploy/db/roles.sql");
      assertEquals(first.code, 0, first.out);
      // The schema as oar, with the password the script set (scram: it is checked).
      const asOar = connectTarget({
        host: pg.socketDir,
        port: pg.port,
        database: "oar",
        user: "oar",
        password,
      }, { max: 1 });
      try {
        await createSchema(asOar);
      } finally {
        await asOar.end();
      }
      // Again, now that the tables exist: the grants.
      const again = await psql("-f", "deploy/db/roles.sql");
      assertEquals(again.code, 0, again.out);
      const check = await psql(
        "-d",
        "oar",
        "-Atc",
        `SELECT has_table_privilege('oar_ro', 'jobs', 'SELECT'),
          has_table_privilege('oar_ro', 'challenges', 'SELECT'),
          (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'oar'),
          (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'oar_ro'),
          pg_get_userbyid((SELECT datdba FROM pg_database WHERE datname = 'oar'))`,
      );
      assertEquals(check.out.trim(), "t|f|f|f|oar");
    } finally {
      await pg.stop();
    }
  },
});
