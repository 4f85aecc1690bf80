/**
 * Jobs left in Launching or Finishing by a process that died, or Running without their
 * oarexec, are ended by sarko: fragged (so Leon kills whatever may still run, or exterminates
 * the job), or switched to Error; never twice, and never while the job still has a chance to
 * finish normally.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { dbNow } from "../lib/db/client.ts";
import { jobEvents } from "../lib/job/events.ts";
import { fragState } from "../lib/job/frag.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { runSarko } from "../modules/sarko/sarko.ts";
import { finishingLimit, launchingLimit, STUCK_JOB_EVENT } from "../modules/sarko/stuck_jobs.ts";
import { localHeldJobs } from "../lib/launch/held_jobs.ts";

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

Deno.test("stuck jobs: events of a job stuck in Finishing that nobody checked get node_change_state asked", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const limit = finishingLimit(db.config);
  const stuck = await jobIn(db, "Finishing", now, limit + 5);
  const recent = await jobIn(db, "Finishing", now, limit - 5);
  for (const id of [stuck, recent]) {
    await db.sql`INSERT INTO event_logs (type, job_id, date, description)
      VALUES ('SWITCH_INTO_TERMINATE_STATE', ${id}, ${now}, 'pending')`;
  }
  // Its bipbip died between the commit and telling almighty: the events wait for nobody.
  const run = await sarko(db, now);
  assertEquals(run.notifier.almightyCommands, ["ChState"]);
  assertEquals((await jobEvents(db.sql, stuck, "SWITCH_INTO_ERROR_STATE")).length, 0);
  // A recent one is left to the notification on its way.
  await db.sql`UPDATE event_logs SET to_check = 'NO' WHERE job_id = ${stuck}`;
  await db.sql`UPDATE jobs SET state = 'Terminated' WHERE job_id = ${stuck}`;
  assertEquals((await sarko(db, now)).notifier.almightyCommands, []);
});

/**
 * Lost oarexecs, with the real local check (pid files and processes, lib/launch/held_jobs.ts)
 * counted as it is asked: two Running jobs on one host, one with a live oarexec, one without.
 */
Deno.test("stuck jobs: a Running job whose oarexec is gone at two checks a grace apart is exterminated; one host asked once", async () => {
  await using db = await createTestDb();
  const root = await Deno.makeTempDir({ prefix: "oar-lost-" });
  const live = new Deno.Command("sleep", { args: ["60"] }).spawn();
  try {
    await Deno.mkdir(`${root}/oarexec`);
    await Deno.mkdir(`${root}/run`);
    const config = db.config.with({
      OAREXEC_DIRECTORY: `${root}/oarexec`,
      OAR_RUNTIME_DIRECTORY: `${root}/run`,
      OAREXEC_CHECK_INTERVAL: 60,
      OAREXEC_CHECK_MIN_AGE: 30,
      OAREXEC_LOST_GRACE: 20,
    });
    const asked: [string, number[]][] = [];
    const launcher = {
      heldJobs: (host: string, ids: number[]) => {
        asked.push([host, [...ids].sort((a, b) => a - b)]);
        return localHeldJobs(config, ids);
      },
    };
    const run = async (now: number) => {
      const notifier = new RecordingNotifier();
      return await runSarko({
        sql: db.sql,
        config,
        log: moduleLogger("sarko"),
        notifier,
        signaller: { signal: () => Promise.resolve(null) },
        clock: () => Promise.resolve(now),
        launcher,
      });
    };
    const now = await dbNow(db.sql);
    const host = `node-${crypto.randomUUID().slice(0, 6)}`;
    const [r1, r2, r3, r4] = await insertResources(db.sql, [host], 4);
    const running = async (r: number, age: number) => {
      const { jobId } = await insertJob(db.sql, {
        state: "Running",
        walltime: 3600,
        resources: [r],
      });
      await db.sql`UPDATE job_state_logs SET date_start = ${now - age}
        WHERE job_id = ${jobId} AND date_stop = 0`;
      return jobId;
    };
    const alive = await running(r1, 120);
    const lost = await running(r2, 120);
    const young = await running(r3, 10); // its oarexec may not have written its pid file yet
    const reported = await running(r4, 120); // gone, but its report lands before the grace ends
    await Deno.writeTextFile(`${root}/oarexec/pid_of_oarexec_for_jobId_${alive}`, `${live.pid}`);

    assertEquals(await run(now), 0);
    assertEquals(asked, [[host, [alive, lost, reported].sort((a, b) => a - b)]]);
    assertEquals(await fragState(db.sql, lost), null);
    // Within the interval and the grace: nobody is asked.
    assertEquals(await run(now + 5), 0);
    assertEquals(asked.length, 1);
    await db.sql`UPDATE jobs SET state = 'Finishing' WHERE job_id = ${reported}`;
    // The grace is over: only the suspects are asked, and the one still Running is ended.
    assertEquals(await run(now + 25), 1);
    assertEquals(asked.slice(1), [[host, [lost]]]);
    assertEquals(await fragState(db.sql, lost), "LEON_EXTERMINATE");
    const [ev] = await jobEvents(db.sql, lost, STUCK_JOB_EVENT);
    assertStringIncludes(ev.description, `Running without its oarexec on ${host}`);
    for (const id of [alive, young, reported]) assertEquals(await fragState(db.sql, id), null);
    // The next full check (interval over) asks about the jobs Running, unfragged and old
    // enough by now: the young one too (its pid file is missing: a new suspect, not ended).
    assertEquals(await run(now + 61), 0);
    assertEquals(asked.slice(2), [[host, [alive, young]]]);
    assertEquals(await fragState(db.sql, young), null);
  } finally {
    live.kill("SIGKILL");
    await live.status;
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stuck jobs: no state directory, OAREXEC_CHECK_INTERVAL=0, or a node not Alive: oarexecs are not checked", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const [r] = await insertResources(db.sql, [`node-${crypto.randomUUID().slice(0, 6)}`], 1);
  // A walltime far away: sarko must not frag it for that (a fragged job is not asked about).
  await insertJob(db.sql, {
    state: "Running",
    walltime: 86_400,
    startTime: now - 600,
    resources: [r],
  });
  let asked = 0;
  const launcher = {
    heldJobs: () => {
      asked++;
      return Promise.resolve(null);
    },
  };
  const run = async (node: string, extra: Record<string, string | number>) => {
    await db.sql`UPDATE resources SET state = ${node} WHERE resource_id = ${r}`;
    await runSarko({
      sql: db.sql,
      config: db.config.with({ OAREXEC_CHECK_INTERVAL: 60, ...extra }),
      log: moduleLogger("sarko"),
      notifier: new RecordingNotifier(),
      signaller: { signal: () => Promise.resolve(null) },
      clock: () => Promise.resolve(now + 3600),
      launcher,
    });
  };
  await run("Alive", { OAR_RUNTIME_DIRECTORY: "/nonexistent/oar-run" });
  await run("Alive", { OAR_RUNTIME_DIRECTORY: Deno.makeTempDirSync(), OAREXEC_CHECK_INTERVAL: 0 });
  await run("Suspected", { OAR_RUNTIME_DIRECTORY: Deno.makeTempDirSync() });
  assertEquals(asked, 0);
  // The same job on its node Alive again is asked about.
  await run("Alive", { OAR_RUNTIME_DIRECTORY: Deno.makeTempDirSync() });
  assertEquals(asked, 1);
});
