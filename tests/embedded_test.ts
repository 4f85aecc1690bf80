/**
 * The embedded default database: created in a fresh directory, reachable only through its unix
 * socket, reused (data intact) by the next start, and gone once stopped.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { freePort } from "./support/ports.ts";
import { connectTarget, connectUrl } from "../lib/db/client.ts";
import { embeddedConfig, prepareEmbeddedDatabase } from "../tools/embedded/setup.ts";
import {
  type EmbeddedPg,
  ensureEmbeddedPostgres,
  findPgBinDir,
} from "../tools/embedded/postgres.ts";

/** Pids of live processes whose working directory is `dataDir` (postmaster and backends). */
function processesOf(dataDir: string): number[] {
  const real = Deno.realPathSync(dataDir);
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.realPathSync(`/proc/${e.name}/cwd`) === real) pids.push(Number(e.name));
    } catch {
      // Exited meanwhile, or not ours to inspect.
    }
  }
  return pids;
}

async function query<T>(pg: EmbeddedPg, fn: (sql: ReturnType<typeof connectUrl>) => Promise<T>) {
  return await withDb(pg, "postgres", fn);
}

/** `fn` on one database of the instance, as the superuser. */
async function withDb<T>(
  pg: EmbeddedPg,
  dbName: string,
  fn: (sql: ReturnType<typeof connectUrl>) => Promise<T>,
) {
  const sql = connectUrl(pg.url(dbName), { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

Deno.test("embedded PostgreSQL: unix socket only, data kept across restarts, nothing left", async () => {
  await findPgBinDir(); // Fails with the install hint where PostgreSQL is missing.
  const base = await Deno.makeTempDir({ prefix: "oar-test-embedded-" });
  // makeTempDir gives 0700; as root the server account must reach the data inside.
  await Deno.chmod(base, 0o755);
  const dir = join(base, "pg");
  // A port nothing else uses, so that "not listening on TCP" is a real check.
  const port = await freePort();
  let pg: EmbeddedPg | undefined;
  try {
    pg = await ensureEmbeddedPostgres({ dir, socketDir: join(base, "run"), port });
    assertOk(pg.startedHere);
    assertEquals(pg.socketDir, join(base, "run"));
    const first = pg;
    const rows = await query(first, async (sql) => {
      await sql`CREATE TABLE kept (v text)`;
      await sql`INSERT INTO kept VALUES ('from the first run')`;
      return await sql`SELECT current_setting('listen_addresses') AS listen,
        inet_server_addr() AS addr`;
    });
    assertEquals([...rows], [{ listen: "", addr: null }]);
    await assertRejects(() => Deno.connect({ hostname: "127.0.0.1", port }));

    // Ensuring again while it runs reuses the running server.
    const again = await ensureEmbeddedPostgres({ dir, socketDir: join(base, "run"), port });
    assertEquals(again.startedHere, false);

    await pg.stop();
    assertEquals(processesOf(pg.dataDir), []);

    // A stale postmaster.pid naming a live unrelated process (a pid reused after a crash) must
    // not stop the next start.
    await Deno.writeTextFile(join(pg.dataDir, "postmaster.pid"), `${Deno.pid}\n${pg.dataDir}\n`);
    pg = await ensureEmbeddedPostgres({ dir, socketDir: join(base, "run"), port });
    assertOk(pg.startedHere);
    const kept = await query(pg, (sql) => sql`SELECT v FROM kept`);
    assertEquals(kept.map((r) => r.v), ["from the first run"]);
    await pg.stop();
    const dataDir = pg.dataDir;
    pg = undefined;
    // Backends exit just after the postmaster; give them a moment, not a fixed sleep.
    await waitFor("no process of the data directory", () => processesOf(dataDir).length === 0);
  } finally {
    if (pg) pg.stopSync();
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("without PostgreSQL server binaries the error says what to install", async () => {
  const e = await assertRejects(() =>
    findPgBinDir({
      override: "/nonexistent/bin",
      pgConfig: "/nonexistent/pg_config",
      debianRoot: "/nonexistent",
    })
  );
  assertStringIncludes(e.message, "install the Debian package `postgresql`");
  assertStringIncludes(e.message, "/nonexistent/bin");
});

Deno.test("findPgBinDir picks a directory holding the server binaries", async () => {
  const dir = await findPgBinDir();
  for (const b of ["initdb", "pg_ctl", "postgres"]) await Deno.stat(join(dir, b));
});

Deno.test({
  name: "as root, data and socket out of the postgres account's reach are relocated",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    // Like a project under /root: a 0700 parent the server account cannot traverse.
    const base = await Deno.makeTempDir({ prefix: "oar-test-private-" });
    const dir = join(base, "pg");
    let pg: EmbeddedPg | undefined;
    try {
      pg = await ensureEmbeddedPostgres({ dir, socketDir: join(base, "run") });
      assertOk(pg.dataDir.startsWith("/var/lib/oar-deno/"), pg.dataDir);
      assertOk(pg.socketDir.startsWith("/run/oar-deno/"), pg.socketDir);
      // The requested path leads to the data, so the next start finds it again.
      assertEquals(Deno.realPathSync(dir), pg.dataDir);
      const [{ one }] = await query(pg, (sql) => sql`SELECT 1 AS one`);
      assertEquals(one, 1);
      await pg.stop();
    } finally {
      pg?.stopSync();
      if (pg) {
        await Deno.remove(pg.dataDir, { recursive: true }).catch(() => {});
        await Deno.remove(pg.socketDir, { recursive: true }).catch(() => {});
        // The parents too, unless an installed embedded database lives there.
        await Deno.remove("/var/lib/oar-deno").catch(() => {});
        await Deno.remove("/run/oar-deno").catch(() => {});
      }
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test("embedded default: the daemons' role owns the database, with its password and no more", async () => {
  const base = await Deno.makeTempDir({ prefix: "oar-test-embedded-roles-" });
  await Deno.chmod(base, 0o755);
  const port = await freePort();
  let pg: EmbeddedPg | undefined;
  try {
    pg = await ensureEmbeddedPostgres({
      dir: join(base, "pg"),
      socketDir: join(base, "run"),
      port,
    });
    const cluster = { hosts: 1, coresPerHost: 2 };
    const prepared = await prepareEmbeddedDatabase(pg, "oar", cluster);
    assertEquals([prepared.login, prepared.created, prepared.registered], ["oar", true, 2]);
    assertEquals(prepared.superuserDatabase, false);
    const config = embeddedConfig(pg, "oar", prepared, base);
    assertEquals(config.DB_BASE_LOGIN, "oar");
    assertEquals(config.DB_BASE_PASSWD, prepared.password);
    const target = {
      host: String(config.DB_HOSTNAME),
      port: Number(config.DB_PORT),
      database: String(config.DB_BASE_NAME),
      user: String(config.DB_BASE_LOGIN),
      password: String(config.DB_BASE_PASSWD),
    };

    const asOar = connectTarget(target, { max: 1 });
    try {
      const [me] = await asOar`
        SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user`;
      assertEquals({ ...me }, { rolsuper: false, rolcreaterole: false, rolcreatedb: false });
      const [jobs] = await asOar`
        SELECT tableowner, (SELECT reloptions FROM pg_class WHERE oid = 'jobs'::regclass) AS opts
        FROM pg_tables WHERE schemaname = 'public' AND tablename = 'jobs'`;
      // fillfactor is set by createSchema "where the role may": the owner may.
      assertEquals({ ...jobs }, { tableowner: "oar", opts: ["fillfactor=70"] });
      // Not one table or sequence of the schema is owned by another role.
      const others = await asOar`
        SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'oar'`;
      assertEquals(others.map((r) => r.relname), []);
      const [job] = await asOar`
        INSERT INTO jobs (job_user, command, state, queue_name, launching_directory,
          checkpoint_signal)
        VALUES ('alice', 'true', 'Waiting', 'default', '/tmp', 0) RETURNING job_id`;
      const [read] = await asOar`SELECT job_user FROM jobs WHERE job_id = ${job.job_id}`;
      assertEquals(read.job_user, "alice");
      await asOar`INSERT INTO challenges (job_id, challenge) VALUES (${job.job_id}, 'secret')`;
      for (
        const forbidden of [
          () => asOar`CREATE ROLE intruder LOGIN SUPERUSER`,
          () => asOar`SELECT rolpassword FROM pg_authid`,
          () => asOar`CREATE DATABASE other`,
        ]
      ) {
        const e = await assertRejects(forbidden);
        assertEquals((e as { code?: string }).code, "42501", e.message);
      }
    } finally {
      await asOar.end();
    }

    // oar_ro, taken on by the superuser (trusted over the socket): reads, except the secrets.
    await withDb(pg, "oar", async (su) => {
      // A connection of its own, not a transaction: the expected error would abort one.
      const conn = await su.reserve();
      try {
        await conn`SET ROLE oar_ro`;
        const [{ n }] = await conn`SELECT count(*)::int AS n FROM jobs`;
        assertEquals(n, 1);
        await conn`SELECT count(*) FROM resources`;
        const e = await assertRejects(() => conn`SELECT challenge FROM challenges`);
        assertEquals((e as { code?: string }).code, "42501", e.message);
      } finally {
        conn.release();
      }
    });

    // The password is checked: scram-sha-256 for every role but the superuser.
    const wrong = connectTarget({ ...target, password: "not-the-password" }, { max: 1 });
    try {
      const e = await assertRejects(() => wrong`SELECT 1`);
      assertEquals((e as { code?: string }).code, "28P01", e.message);
    } finally {
      await wrong.end();
    }

    // A second start with the password kept in oar.conf: same role, nothing created again.
    const again = await prepareEmbeddedDatabase(pg, "oar", cluster, {
      password: prepared.password,
    });
    assertEquals([again.created, again.registered, again.password], [false, 0, prepared.password]);
    const reconnect = connectTarget(target, { max: 1 });
    try {
      const [{ n }] = await reconnect`SELECT count(*)::int AS n FROM resources`;
      assertEquals(n, 2);
    } finally {
      await reconnect.end();
    }

    // A database made by an earlier version (owned by the superuser) is left with the
    // superuser's login, as it was.
    await query(pg, (sql) => sql`CREATE DATABASE legacy`);
    const legacy = await prepareEmbeddedDatabase(pg, "legacy", cluster);
    assertEquals([legacy.superuserDatabase, legacy.login, legacy.password], [
      true,
      pg.superuser,
      "",
    ]);
    const [{ owner }] = await withDb(
      pg,
      "legacy",
      (sql) => sql`SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'jobs'`,
    );
    assertEquals(owner, pg.superuser);
    await pg.stop();
    pg = undefined;
  } finally {
    pg?.stopSync();
    await Deno.remove(base, { recursive: true });
  }
});
