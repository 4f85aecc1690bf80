/**
 * Sarko in-process against a real database with an injected clock: every case of OAR 3's
 * test_sarko.py, and our fixes (docs/differences.md §4-§6), the Leon delay overrides and the lock
 * that keeps overlapping runs apart.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { Config } from "../lib/runtime/config.ts";
import { jobEvents } from "../lib/job/events.ts";
import { fragState } from "../lib/job/frag.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { withModuleLock } from "../lib/runtime/module_lock.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { RecordingSignaller } from "./support/signaller.ts";
import { getResource } from "../lib/resource/resources.ts";
import { leonDelays, runSarko } from "../modules/sarko/sarko.ts";

interface Run {
  code: number;
  notifier: RecordingNotifier;
  signaller: RecordingSignaller;
}

async function sarko(
  db: TestDb,
  now: number,
  extra: Record<string, string | number> = {},
  signaller = new RecordingSignaller(),
): Promise<Run> {
  const notifier = new RecordingNotifier();
  const code = await runSarko({
    sql: db.sql,
    config: db.config.with(extra),
    log: moduleLogger("sarko"),
    notifier,
    signaller,
    clock: () => Promise.resolve(now),
  });
  return { code, notifier, signaller };
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(`sarko: ${name}`, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

/** A Running job as test_sarko.py inserts them: walltime 60, started at 0. */
async function runningJob(db: TestDb, extra: Parameters<typeof insertJob>[1] = {}) {
  const [r] = await insertResources(db.sql, ["localhost0"], 1);
  return (await insertJob(db.sql, {
    state: "Running",
    walltime: 60,
    startTime: 0,
    resources: [r],
    name: `it's a "job" $(touch /tmp/x)`,
    ...extra,
  })).jobId;
}

async function armTimer(db: TestDb, jobId: number, fragDate: number) {
  await db.sql`
    INSERT INTO frag_jobs (frag_id_job, frag_date, frag_state)
    VALUES (${jobId}, ${fragDate}, 'TIMER_ARMED')`;
}

dbTest("void: nothing to do, exit 0", async (db) => {
  assertEquals((await sarko(db, 100)).code, 0);
});

dbTest("walltime reached: frag, one WALLTIME event, exit 1", async (db) => {
  const id = await runningJob(db);
  assertEquals((await sarko(db, 100)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON");
  const events = await jobEvents(db.sql, id, "WALLTIME");
  assertEquals(events.length, 1);
  assertEquals(events[0].description, `Job: ${id} from 0 with 60; current time=100 (Elapsed)`);
  assertEquals((await jobEvents(db.sql, id, "FRAG_JOB_REQUEST")).length, 1);
});

dbTest(
  "walltime: one WALLTIME event and one Leon trigger per job (docs/differences.md §6)",
  async (db) => {
    const id = await runningJob(db);
    assertEquals((await sarko(db, 100)).code, 1);
    assertEquals((await sarko(db, 110)).code, 0);
    assertEquals((await sarko(db, 120)).code, 0);
    assertEquals((await jobEvents(db.sql, id, "WALLTIME")).length, 1);
  },
);

dbTest("walltime boundary to the second: start+walltime is still inside", async (db) => {
  const id = await runningJob(db);
  assertEquals((await sarko(db, 60)).code, 0);
  assertEquals(await fragState(db.sql, id), null);
  assertEquals((await sarko(db, 61)).code, 1);
});

dbTest(
  "a suspended job's walltime is extended by its suspended time (docs/differences.md §5)",
  async (db) => {
    const id = await runningJob(db, { suspended: true });
    // Suspended from 10 to 40, Resuming from 40 to 50: 40 s not running.
    await db.sql`DELETE FROM job_state_logs WHERE job_id = ${id}`;
    await db.sql`
    INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop) VALUES
      (${id}, 'Running', 0, 10), (${id}, 'Suspended', 10, 40), (${id}, 'Resuming', 40, 50),
      (${id}, 'Running', 50, 0)`;
    // OAR 3 would use 40 s as the walltime and kill it at 41.
    assertEquals((await sarko(db, 90)).code, 0);
    assertEquals((await sarko(db, 100)).code, 0);
    assertEquals(await fragState(db.sql, id), null);
    assertEquals((await sarko(db, 101)).code, 1);
    const [ev] = await jobEvents(db.sql, id, "WALLTIME");
    assertStringIncludes(ev.description, "with 100;");
  },
);

dbTest("checkpoint: signal USR2 to the head node, CHECKPOINT_SUCCESSFULL, exit 0", async (db) => {
  const rs = await insertResources(db.sql, ["node-b", "node-a"], 1);
  const { jobId: id } = await insertJob(db.sql, {
    state: "Running",
    walltime: 60,
    startTime: 0,
    resources: rs,
  });
  await db.sql`UPDATE jobs SET checkpoint = 30 WHERE job_id = ${id}`;
  const run = await sarko(db, 45);
  assertEquals(run.code, 0);
  assertEquals(run.signaller.calls, [["node-a", id, "USR2"]]);
  assertEquals((await jobEvents(db.sql, id, "CHECKPOINT")).length, 1);
  const [ok] = await jobEvents(db.sql, id, "CHECKPOINT_SUCCESSFULL");
  assertEquals(
    ok.description,
    `[Sarko]The job ${id} was notified to checkpoint itself on the node node-a`,
  );
  // Once per window (docs/differences.md §6): the next runs do not signal again.
  assertEquals((await sarko(db, 50)).signaller.calls, []);
  assertEquals((await jobEvents(db.sql, id, "CHECKPOINT")).length, 1);
});

dbTest("checkpoint: before the window nothing is sent", async (db) => {
  const id = await runningJob(db);
  await db.sql`UPDATE jobs SET checkpoint = 30 WHERE job_id = ${id}`;
  const run = await sarko(db, 29);
  assertEquals(run.signaller.calls, []);
  assertEquals((await jobEvents(db.sql, id)).length, 0);
});

dbTest("checkpoint: a failed signal is a CHECKPOINT_ERROR event", async (db) => {
  const id = await runningJob(db);
  await db.sql`UPDATE jobs SET checkpoint = 30 WHERE job_id = ${id}`;
  const run = await sarko(db, 45, {}, new RecordingSignaller("ssh: connect refused"));
  assertEquals(run.code, 0);
  const [err] = await jobEvents(db.sql, id, "CHECKPOINT_ERROR");
  assertEquals(err.description, "[Sarko]ssh: connect refused");
});

dbTest("checkpoint: deploy jobs are signalled on DEPLOY_HOSTNAME", async (db) => {
  const id = await runningJob(db, { types: ["deploy"] });
  await db.sql`UPDATE jobs SET checkpoint = 30 WHERE job_id = ${id}`;
  const run = await sarko(db, 45, { DEPLOY_HOSTNAME: "frontend" });
  assertEquals(run.signaller.calls, [["frontend", id, "USR2"]]);
});

dbTest("timer armed, job Terminated: FRAGGED, exit 0", async (db) => {
  const { jobId: id } = await insertJob(db.sql, { state: "Terminated" });
  await armTimer(db, id, 0);
  assertEquals((await sarko(db, 0)).code, 0);
  assertEquals(await fragState(db.sql, id), "FRAGGED");
});

dbTest("timer armed, job Running, timer not expired: exit 0", async (db) => {
  const id = await runningJob(db, { walltime: 3600 });
  await armTimer(db, id, 0);
  assertEquals((await sarko(db, 0)).code, 0);
  assertEquals(await fragState(db.sql, id), "TIMER_ARMED");
});

dbTest("timer armed, soft delay passed: back to LEON, exit 1", async (db) => {
  const id = await runningJob(db, { walltime: 3600 });
  await armTimer(db, id, 0);
  assertEquals((await sarko(db, 100)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON");
});

dbTest("timer armed, hard delay passed: LEON_EXTERMINATE, exit 1", async (db) => {
  const id = await runningJob(db, { walltime: 3600 });
  await armTimer(db, id, 0);
  assertEquals((await sarko(db, 400)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON_EXTERMINATE");
});

dbTest("JOBDEL_* override LEON_*; hard <= soft means soft + 10", async (db) => {
  const id = await runningJob(db, { walltime: 3600 });
  const extra = { JOBDEL_SOFTWALLTIME: 50, JOBDEL_WALLTIME: 40 };
  await armTimer(db, id, 0);
  assertEquals((await sarko(db, 50, extra)).code, 0);
  assertEquals((await sarko(db, 55, extra)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON");
  await db.sql`UPDATE frag_jobs SET frag_state = 'TIMER_ARMED' WHERE frag_id_job = ${id}`;
  assertEquals((await sarko(db, 60, extra)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON");
  await db.sql`UPDATE frag_jobs SET frag_state = 'TIMER_ARMED' WHERE frag_id_job = ${id}`;
  assertEquals((await sarko(db, 61, extra)).code, 1);
  assertEquals(await fragState(db.sql, id), "LEON_EXTERMINATE");
});

Deno.test("sarko: leonDelays defaults and overrides", () => {
  assertEquals(leonDelays(new Config()), { soft: 20, hard: 300 });
  assertEquals(leonDelays(new Config({ LEON_SOFT_WALLTIME: 30, LEON_WALLTIME: 30 })), {
    soft: 30,
    hard: 40,
  });
  assertEquals(leonDelays(new Config({ JOBDEL_WALLTIME: 100 })), { soft: 20, hard: 100 });
});

dbTest("dead switch: no resource logs, exit 0", async (db) => {
  assertEquals((await sarko(db, 400, { DEAD_SWITCH_TIME: 100 })).code, 0);
});

async function resourceLoggedSince(db: TestDb, host: string, value: string, since: number) {
  const [rid] = await insertResources(db.sql, [host], 1);
  await db.sql`UPDATE resources SET state = ${value} WHERE resource_id = ${rid}`;
  await db.sql`
    UPDATE resource_logs SET value = ${value}, date_start = ${since}
    WHERE resource_id = ${rid} AND date_stop = 0`;
  return rid;
}

dbTest(
  "dead switch: Suspected and Absent for too long become Dead; Alive never (§4)",
  async (db) => {
    const suspected = await resourceLoggedSince(db, "n1", "Suspected", 50);
    const absent = await resourceLoggedSince(db, "n2", "Absent", 50);
    const alive = await resourceLoggedSince(db, "n3", "Alive", 50);
    const recent = await resourceLoggedSince(db, "n4", "Suspected", 350);
    const run = await sarko(db, 400, { DEAD_SWITCH_TIME: 100 });
    assertEquals(run.code, 0);
    assertEquals(run.notifier.almightyCommands, ["ChState"]);
    const r1 = await getResource(db.sql, suspected);
    assertEquals([r1?.next_state, r1?.next_finaud_decision], ["Dead", "YES"]);
    assertEquals((await getResource(db.sql, absent))?.next_state, "Dead");
    assertEquals((await getResource(db.sql, alive))?.next_state, "UnChanged");
    assertEquals((await getResource(db.sql, recent))?.next_state, "UnChanged");
  },
);

dbTest("dead switch: off by default", async (db) => {
  const rid = await resourceLoggedSince(db, "n1", "Suspected", 50);
  await sarko(db, 100_000);
  assertEquals((await getResource(db.sql, rid))?.next_state, "UnChanged");
});

dbTest("expired desktop-computing resource: next_state Suspected, LOG_SUSPECTED", async (db) => {
  const [rid, other] = await insertResources(db.sql, ["desk0", "desk1"], 1);
  await db.sql`
    UPDATE resources SET desktop_computing = 'YES', expiry_date = 50 WHERE resource_id = ${rid}`;
  await db.sql`
    UPDATE resources SET desktop_computing = 'YES', expiry_date = 500
    WHERE resource_id = ${other}`;
  const run = await sarko(db, 100);
  assertEquals(run.code, 0);
  assertEquals(run.notifier.almightyCommands, ["ChState"]);
  assertEquals((await getResource(db.sql, rid))?.next_state, "Suspected");
  assertEquals((await getResource(db.sql, other))?.next_state, "UnChanged");
  const [ev] = await jobEvents(db.sql, 0, "LOG_SUSPECTED");
  assertEquals(ev.hostnames, ["desk0"]);
  assertStringIncludes(ev.description, `resource ${rid} has expired on node desk0`);
});

dbTest("the module lock: a second run while one holds it does nothing", async (db) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const first = withModuleLock(db.sql, "sarko", undefined, async () => {
    entered();
    await held;
    return 1;
  });
  await inside;
  let ran = false;
  const second = await withModuleLock(db.sql, "sarko", undefined, () => {
    ran = true;
    return Promise.resolve(1);
  });
  assertEquals([second, ran], [0, false]);
  // Another module's lock is independent.
  assertEquals(await withModuleLock(db.sql, "finaud", undefined, () => Promise.resolve(7)), 7);
  release();
  assertEquals(await first, 1);
  // Released: the next run gets it.
  assertEquals(await withModuleLock(db.sql, "sarko", undefined, () => Promise.resolve(5)), 5);
});

dbTest("hostile job names change nothing (#148)", async (db) => {
  const id = await runningJob(db, { name: `'; DROP TABLE jobs; --\n$(rm -rf /) \`x\`` });
  assertEquals((await sarko(db, 100)).code, 1);
  assertOk((await jobEvents(db.sql, id, "WALLTIME")).length === 1);
});
