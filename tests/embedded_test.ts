/**
 * The embedded default database: created in a fresh directory, reachable only through its unix
 * socket, reused (data intact) by the next start, and gone once stopped.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { freePort } from "./support/ports.ts";
import { connectUrl } from "../lib/db/client.ts";
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
  const sql = connectUrl(pg.url(), { max: 1 });
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
