/**
 * One-shot modules kept ready by almighty (modules/almighty/standby.ts), as real processes on a
 * real database: a standby does nothing until its go, then runs exactly like a fresh start and
 * reports the run's exit code; the same process serves the next runs until it is too old, has
 * served its runs, failed or died; a dismissed one leaves without doing anything.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { writeConfigFile } from "./support/testdb.ts";
import { readConfigFile } from "../lib/runtime/config.ts";
import { addEvent } from "../lib/job/events.ts";
import { type StandbyLimits, StandbyPool } from "../modules/almighty/standby.ts";
import type { Queryable } from "../lib/db/client.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const NCS = "node_change_state";

async function unchecked(sql: Queryable, jobId: number): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM event_logs WHERE job_id = ${jobId} AND to_check = 'YES'`;
  return n;
}

/** The backends of node_change_state processes: one per process, kept for its life. */
async function ncsBackends(sql: Queryable): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'oar-node_change_state'
    ORDER BY pid`;
  return rows.map((r) => r.pid);
}

async function poolFor(db: TestDb, limits: StandbyLimits = {}, now?: () => number) {
  const config = readConfigFile(await writeConfigFile(db, { LOG_FILE: ":stderr:", LOG_LEVEL: 1 }));
  return new StandbyPool(config, [NCS], limits, now);
}

/** A run of node_change_state; the process that did it. */
async function runWith(pool: StandbyPool): Promise<{ code: number; child: Deno.ChildProcess }> {
  let child: Deno.ChildProcess | null = null;
  const code = await pool.run(NCS, (c) => (child = c));
  return { code, child: child! };
}

/** A run of node_change_state; the pid of the process that did it. */
async function run(pool: StandbyPool): Promise<{ code: number; pid: number }> {
  const { code, child } = await runWith(pool);
  return { code, pid: child.pid };
}

Deno.test("standby: ready ahead, runs on go, leaves untouched when dismissed", opts, async () => {
  await using db = await createTestDb();
  const { jobId } = await insertJob(db.sql, { state: "Terminated" });
  await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t" });

  let clock = 0;
  const pool = await poolFor(db, { maxAgeMs: 1000 }, () => clock);
  try {
    pool.prepare(NCS);
    // Ready (connected to the database) and waiting for its go: the event is untouched.
    await waitFor("the standby's connection", async () => (await ncsBackends(db.sql)).length > 0);
    assertEquals(await unchecked(db.sql, jobId), 1);

    const first = await run(pool);
    assertEquals(first.code, 0);
    assertEquals(await unchecked(db.sql, jobId), 0);

    // Older than the maximum age: dismissed; a fresh start does the run.
    await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t2" });
    clock = 5000;
    const fresh = await run(pool);
    assertEquals(fresh.code, 0);
    assertOk(fresh.pid !== first.pid);
    assertEquals(await unchecked(db.sql, jobId), 0);

    // Dismissed on stop: it leaves without handling the new event.
    await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t3" });
  } finally {
    await pool.stop();
  }
  assertEquals(await unchecked(db.sql, jobId), 1);
  await waitFor("no node_change_state left", async () => (await ncsBackends(db.sql)).length === 0);
});

Deno.test(
  "standby: one process serves run after run, each with its own exit code",
  opts,
  async () => {
    await using db = await createTestDb();
    const [rid] = await insertResources(db.sql, ["node1"], 1);
    const { jobId } = await insertJob(db.sql, { state: "Terminated" });
    const pool = await poolFor(db);
    try {
      await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t" });
      const first = await run(pool);
      assertEquals(first.code, 0);
      assertEquals(await unchecked(db.sql, jobId), 0);
      const backends = await ncsBackends(db.sql);
      assertEquals(backends.length, 1);

      // A resource change asked for: exit 1 (almighty runs the scheduler), done by the same
      // process on the same connection.
      await db.sql`UPDATE resources SET next_state = 'Absent' WHERE resource_id = ${rid}`;
      const second = await run(pool);
      assertEquals(second, { code: 1, pid: first.pid });
      const [{ state }] = await db.sql`SELECT state FROM resources WHERE resource_id = ${rid}`;
      assertEquals(state, "Absent");

      const third = await run(pool);
      assertEquals(third, { code: 0, pid: first.pid });
      assertEquals(await ncsBackends(db.sql), backends);
    } finally {
      await pool.stop();
    }
  },
);

Deno.test("standby: replaced after its runs, after a failure, and when it died", opts, async () => {
  await using db = await createTestDb();
  const pool = await poolFor(db, { maxRuns: 2 });
  try {
    const a = await run(pool);
    const b = await run(pool);
    const c = await runWith(pool);
    assertEquals([a.code, b.code, c.code], [0, 0, 0]);
    assertEquals(b.pid, a.pid);
    assertOk(c.child.pid !== a.pid); // two runs served: a fresh process took the third

    // Killed while it waits for its next go, the run asked for at once (before or after its
    // death is seen): a fresh process does it, and the killed one's status is no run's code.
    const { jobId } = await insertJob(db.sql, { state: "Terminated" });
    await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t" });
    c.child.kill("SIGKILL");
    const d = await run(pool);
    assertEquals(d.code, 0);
    assertOk(d.pid !== c.child.pid);
    assertEquals(await unchecked(db.sql, jobId), 0);

    // oar.conf written since the standby started (it read the old one): a fresh process.
    const conf = pool.config.source;
    await Deno.writeTextFile(conf, await Deno.readTextFile(conf));
    const e = await run(pool);
    assertEquals(e.code, 0);
    assertOk(e.pid !== d.pid);
  } finally {
    await pool.stop();
  }

  // A run that fails (no database there) is exit 1, and its process does not serve again.
  const broken = readConfigFile(
    await writeConfigFile(db, { LOG_FILE: ":stderr:", LOG_LEVEL: 0, DB_PORT: 1 }),
  );
  const failing = new StandbyPool(broken, [NCS]);
  try {
    let p1 = 0, p2 = 0;
    assertEquals(await failing.run(NCS, (c) => (p1 = c.pid)), 1);
    assertEquals(await failing.run(NCS, (c) => (p2 = c.pid)), 1);
    assertOk(p1 !== p2);
  } finally {
    await failing.stop();
  }
});

Deno.test("standby: modules not kept ready run as a process of their own", opts, async () => {
  await using db = await createTestDb();
  const pool = await poolFor(db);
  try {
    let pid = 0;
    assertEquals(await pool.run("leon", (c) => (pid = c.pid)), 0);
    assertOk(pid > 0);
  } finally {
    await pool.stop();
  }
});
