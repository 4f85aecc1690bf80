/**
 * One-shot modules started ahead by almighty (lib/almighty/standby.ts), as real processes on a
 * real database: a standby does nothing until its go, then runs exactly like a fresh start; a
 * dismissed one leaves without doing anything; one grown old is replaced by a fresh start.
 */
import { assertEquals } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { createTestDb } from "./support/testdb.ts";
import { insertJob } from "./support/fixtures.ts";
import { writeConfigFile } from "./support/testdb.ts";
import { readConfigFile } from "../lib/config.ts";
import { addEvent } from "../lib/events.ts";
import { StandbyPool } from "../lib/almighty/standby.ts";
import type { Queryable } from "../lib/db/client.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function unchecked(sql: Queryable, jobId: number): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM event_logs WHERE job_id = ${jobId} AND to_check = 'YES'`;
  return n;
}

Deno.test("standby: ready ahead, runs on go, leaves untouched when dismissed", opts, async () => {
  await using db = await createTestDb();
  const config = readConfigFile(await writeConfigFile(db, { LOG_FILE: ":stderr:", LOG_LEVEL: 1 }));
  const { jobId } = await insertJob(db.sql, { state: "Terminated" });
  await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t" });

  let clock = 0;
  const pool = new StandbyPool(config, ["node_change_state"], 1000, () => clock);
  try {
    pool.prepare("node_change_state");
    // Ready (connected to the database) and waiting for its go: the event is untouched.
    await waitFor("the standby's connection", async () => {
      const [{ n }] = await db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'oar-node_change_state'`;
      return n > 0;
    }, 20_000);
    assertEquals(await unchecked(db.sql, jobId), 1);

    const child = pool.start("node_change_state");
    assertEquals((await child.status).code, 0);
    assertEquals(await unchecked(db.sql, jobId), 0);

    // A standby older than the maximum age is dismissed; a fresh start does the run.
    await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t2" });
    pool.prepare("node_change_state");
    clock = 5000;
    const fresh = pool.start("node_change_state");
    assertEquals((await fresh.status).code, 0);
    assertEquals(await unchecked(db.sql, jobId), 0);

    // Dismissed on stop: it leaves without handling the new event.
    await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId, description: "t3" });
    pool.prepare("node_change_state");
  } finally {
    await pool.stop();
  }
  assertEquals(await unchecked(db.sql, jobId), 1);
});
