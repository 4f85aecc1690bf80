/**
 * Jobs left in Launching or Finishing by a process that died are ended by sarko: fragged (so
 * Leon kills whatever may still run), or switched to Error; never twice, and never while the
 * job still has a chance to finish normally.
 */
import { assertEquals } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { dbNow } from "../lib/db/client.ts";
import { jobEvents } from "../lib/events.ts";
import { fragState } from "../lib/frag.ts";
import { moduleLogger } from "../lib/log.ts";
import { RecordingNotifier } from "../lib/notifier.ts";
import { runSarko } from "../lib/sarko.ts";
import { finishingLimit, launchingLimit, STUCK_JOB_EVENT } from "../lib/stuck_jobs.ts";

async function sarko(db: TestDb, now: number) {
  const notifier = new RecordingNotifier();
  const code = await runSarko({
    sql: db.sql,
    config: db.config,
    log: moduleLogger("sarko"),
    notifier,
    signaller: { signal: () => Promise.resolve(null) },
    clock: () => Promise.resolve(now),
  });
  return { code, notifier };
}

/** A job in `state` whose open state log started `age` seconds before `now`. */
async function jobIn(db: TestDb, state: "Launching" | "Finishing", now: number, age: number) {
  const [r] = await insertResources(db.sql, [`node-${crypto.randomUUID().slice(0, 6)}`], 1);
  const { jobId } = await insertJob(db.sql, { state, walltime: 3600, resources: [r] });
  await db.sql`UPDATE job_state_logs SET date_start = ${now - age}
    WHERE job_id = ${jobId} AND date_stop = 0`;
  return jobId;
}

Deno.test("stuck jobs: a job stuck in Launching is fragged once; a recent one is left alone", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const limit = launchingLimit(db.config);
  const stuck = await jobIn(db, "Launching", now, limit + 5);
  const recent = await jobIn(db, "Launching", now, limit - 5);
  const first = await sarko(db, now);
  assertEquals(first.code, 1);
  assertEquals(await fragState(db.sql, stuck), "LEON");
  assertEquals(await fragState(db.sql, recent), null);
  assertEquals((await jobEvents(db.sql, stuck, STUCK_JOB_EVENT)).length, 1);
  const second = await sarko(db, now + 1);
  assertEquals((await jobEvents(db.sql, stuck, STUCK_JOB_EVENT)).length, 1);
  assertEquals(second.code, 0);
});

Deno.test("stuck jobs: a job stuck in Finishing with no pending event gets one error event", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const limit = finishingLimit(db.config);
  const stuck = await jobIn(db, "Finishing", now, limit + 5);
  const waiting = await jobIn(db, "Finishing", now, limit + 5);
  // This one's events have not been handled yet: node_change_state will end it.
  await db.sql`INSERT INTO event_logs (type, job_id, date, description)
    VALUES ('SWITCH_INTO_TERMINATE_STATE', ${waiting}, ${now}, 'pending')`;
  const run = await sarko(db, now);
  assertEquals(run.notifier.almightyCommands, ["ChState"]);
  assertEquals((await jobEvents(db.sql, stuck, "SWITCH_INTO_ERROR_STATE")).length, 1);
  assertEquals((await jobEvents(db.sql, waiting, "SWITCH_INTO_ERROR_STATE")).length, 0);
  // While its event waits for node_change_state, a second run adds nothing.
  await sarko(db, now + 10);
  assertEquals((await jobEvents(db.sql, stuck, "SWITCH_INTO_ERROR_STATE")).length, 1);
});
