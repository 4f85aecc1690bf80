/**
 * Meta-scheduler rounds on a real database: the reference's test_db_metasched.py scenarios
 * (5 resources on host `localhost`, queues default prio 3 / besteffort prio 0), backfilling,
 * hierarchy and property constraints, moldables, reservations, besteffort preemption,
 * dependencies, bad filters, and the oarsub notifications over real TCP.
 */
import { Config } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { metaSchedRound, type RoundReport } from "../modules/meta_sched/round.ts";
import { sqlTime } from "../modules/meta_sched/steps/notify_start_predictions.ts";
import { timesharingKey } from "../modules/meta_sched/kamelot/timesharing.ts";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  addAccounting,
  addCluster,
  makeRunning,
  plannedPlacement,
  referenceQueues,
  roundRunner,
  submitJob,
} from "./support/sched_fixtures.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { runEntry, waitFor } from "./support/proc.ts";
import { freePort, REFUSED_ADDRESS } from "./support/ports.ts";

const log = moduleLogger("meta_sched");

/** A listening "oarsub": collects the lines each connection sends. */
class FakeOarsub implements AsyncDisposable {
  readonly lines: string[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #done: Promise<void>;
  constructor() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#done = (async () => {
      for await (const conn of listener) {
        const text = await new Response(conn.readable).text();
        this.lines.push(...text.split("\n").filter((l) => l !== ""));
      }
    })().catch(() => {});
  }
  get infoType(): string {
    return `127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }
  async [Symbol.asyncDispose]() {
    this.#listener.close();
    await this.#done;
  }
}

interface Env {
  db: TestDb;
  notifier: RecordingNotifier;
  rids: number[];
  round: (extra?: Record<string, string | number>, now?: number) => Promise<RoundReport>;
}

/** The reference's set-up: 5 resources on localhost, default prio 3, besteffort prio 0. */
async function setup(db: TestDb, conf: Record<string, string | number> = {}): Promise<Env> {
  await referenceQueues(db.sql);
  const rids = await addCluster(db.sql, ["localhost"], 5);
  const notifier = new RecordingNotifier();
  const base = new Config({
    ...Object.fromEntries(db.config.entries()),
    SCHEDULER_JOB_SECURITY_TIME: 60,
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
    ...conf,
  });
  return {
    db,
    notifier,
    rids,
    round: (extra = {}, now?: number) =>
      metaSchedRound({ sql: db.sql, config: base.with(extra), log, notifier, now }),
  };
}

async function jobState(db: TestDb, id: number): Promise<string> {
  const [r] = await db.sql<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${id}`;
  return r.state;
}

async function jobRow(db: TestDb, id: number) {
  const [r] = await db.sql<
    {
      state: string;
      message: string;
      reservation: string;
      start_time: number;
      assigned_moldable_job: number;
    }[]
  >`SELECT state, message, reservation, start_time, assigned_moldable_job FROM jobs
    WHERE job_id = ${id}`;
  return r;
}

const prediction = (db: TestDb, moldableId: number) => plannedPlacement(db.sql, moldableId);

async function fragged(db: TestDb, id: number): Promise<boolean> {
  const r = await db.sql`SELECT 1 FROM frag_jobs WHERE frag_id_job = ${id}`;
  return r.length === 1;
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(name, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

// --- the reference's scenarios (tests/kao/test_db_metasched.py) -------------------------------

dbTest("metasched simple_1: one waiting job needing 4 resources is launched", async (db) => {
  const env = await setup(db);
  const { jobId, moldableIds } = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const now = await dbNow(db.sql);
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 0);
  const j = await jobRow(db, jobId);
  assertEquals(j.state, "toLaunch");
  assertEquals(j.start_time, now);
  assertEquals(j.assigned_moldable_job, moldableIds[0]);
  assertStringIncludes(j.message, "R=4,W=0:10:00,J=B,Q=default");
  const assigned = await db.sql`
    SELECT resource_id FROM assigned_resources WHERE moldable_job_id = ${moldableIds[0]}
      AND assigned_resource_index = 'CURRENT'`;
  assertEquals(assigned.length, 4);
  assertEquals(env.notifier.commanderMessages, [{ job_id: jobId, cmd: "OARRUN", args: [] }]);
  const visu = await db.sql`SELECT * FROM gantt_jobs_resources_visu`;
  assertEquals(visu.length, 4);
  const log = await db.sql`SELECT job_state FROM job_state_logs WHERE job_id = ${jobId}
    ORDER BY job_state_log_id`;
  assertEquals(log.map((l) => l.job_state), ["Waiting", "toLaunch"]);
  // Next round: the job is current, stays in the Gantt, and is re-notified (step 15).
  const r2 = await env.round({}, now + 1);
  assertEquals(r2.launched, []);
  assertEquals(env.notifier.commanderMessages.length, 2);
  assertEquals((await prediction(db, moldableIds[0]))?.start, now);
});

dbTest("metasched ar_1: a reservation at now+10 is accepted and acknowledged", async (db) => {
  const env = await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  const { jobId, moldableIds } = await submitJob(db.sql, {
    resources: 4,
    walltime: 600,
    reservationStart: now + 10,
    infoType: oarsub.infoType,
  });
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 0);
  const j = await jobRow(db, jobId);
  assertEquals([j.state, j.reservation], ["Waiting", "Scheduled"]);
  assertEquals((await prediction(db, moldableIds[0]))?.start, now + 10);
  assertEquals(oarsub.lines, ["GOOD RESERVATION"]);
  const states = await db.sql`SELECT job_state FROM job_state_logs WHERE job_id = ${jobId}
    ORDER BY job_state_log_id`;
  assertEquals(states.map((s) => s.job_state), ["Waiting", "toAckReservation", "Waiting"]);
  // Its prediction survives the next round's flush, and it starts when its time comes.
  await env.round({}, now + 5);
  assertEquals((await prediction(db, moldableIds[0]))?.start, now + 10);
  assertEquals(await jobState(db, jobId), "Waiting");
  const r3 = await env.round({}, now + 10);
  assertEquals(r3.launched, [jobId]);
});

dbTest("metasched: a reservation starting now is acknowledged with exit 1", async (db) => {
  const env = await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  const { jobId } = await submitJob(db.sql, {
    resources: 2,
    reservationStart: now,
    infoType: oarsub.infoType,
  });
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 1);
  assertEquals(await jobState(db, jobId), "Waiting");
  const r2 = await env.round({}, now);
  assertEquals(r2.launched, [jobId]);
});

/** A reservation already accepted (Scheduled, Waiting) with its Gantt rows. */
async function scheduledReservation(db: TestDb, start: number, rids: number[]) {
  const { jobId, moldableIds } = await submitJob(db.sql, {
    resources: rids.length,
    walltime: 3600,
    reservationStart: start,
  });
  await db.sql`UPDATE jobs SET reservation = 'Scheduled' WHERE job_id = ${jobId}`;
  await db.sql`INSERT INTO gantt_jobs_predictions VALUES (${moldableIds[0]}, ${start})`;
  await db.sql`INSERT INTO gantt_jobs_resources
    SELECT ${moldableIds[0]}, r FROM unnest(${rids}::int[]) AS r`;
  return { jobId, moldableId: moldableIds[0] };
}

async function runningBesteffort(db: TestDb, rids: number[], start: number) {
  const { jobId, moldableIds } = await submitJob(db.sql, {
    queue: "besteffort",
    types: ["besteffort"],
    resources: rids.length,
    walltime: 36000,
  });
  await makeRunning(db.sql, jobId, moldableIds[0], rids, start);
  return jobId;
}

dbTest("metasched ar_check_kill_be: a started reservation frags the besteffort job", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const ar = await scheduledReservation(db, now - 10, env.rids.slice(0, 4));
  const be = await runningBesteffort(db, env.rids.slice(0, 4), now - 100);
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 2);
  assertOk(await fragged(db, be));
  assertEquals(r.launched, []);
  assertEquals(await jobState(db, ar.jobId), "Waiting");
  const ev = await db.sql`SELECT description FROM event_logs
    WHERE type = 'BESTEFFORT_KILL' AND job_id = ${be}`;
  assertEquals(ev.map((e) => e.description), [`kill the besteffort job ${be}`]);
  assertOk(env.notifier.almightyCommands.includes("ChState"));
});

dbTest(
  "metasched ar_check_kill_be_security_time: killed within the anticipation window",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    await scheduledReservation(db, now + 60, env.rids.slice(0, 4));
    const be = await runningBesteffort(db, env.rids.slice(0, 4), now - 100);
    const r = await env.round({ SCHEDULER_BESTEFFORT_KILL_DURATION_BEFORE_RESERVATION: 120 }, now);
    assertEquals(r.exitCode, 2);
    assertOk(await fragged(db, be));
  },
);

dbTest("metasched ar_check_no_be_security_time: too early to kill", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  await scheduledReservation(db, now + 120, env.rids.slice(0, 4));
  const be = await runningBesteffort(db, env.rids.slice(0, 4), now - 100);
  const r = await env.round({ SCHEDULER_BESTEFFORT_KILL_DURATION_BEFORE_RESERVATION: 60 }, now);
  assertEquals(r.exitCode, 0);
  assertOk(!(await fragged(db, be)));
});

dbTest("metasched call_external_scheduler_fails: the queue becomes notActive", async (db) => {
  const env = await setup(db);
  await submitJob(db.sql, { resources: 1 });
  await env.round({ METASCHEDULER_MODE: "external", SCHEDULERS_PATH: "/nonexistent" });
  const [q] = await db.sql`SELECT state FROM queues WHERE queue_name = 'default'`;
  assertEquals(q.state, "notActive");
});

dbTest(
  "metasched be_released_for_job: a normal job frags the besteffort job in its way",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const be = await runningBesteffort(db, env.rids.slice(0, 4), now - 100);
    const { jobId } = await submitJob(db.sql, { resources: 4, walltime: 600 });
    const r = await env.round({}, now);
    assertEquals(r.exitCode, 2);
    assertOk(await fragged(db, be));
    assertEquals(await jobState(db, jobId), "Waiting"); // nothing launched this round
    assertEquals(env.notifier.commanderMessages, []);
  },
);

dbTest(
  "metasched be_checkpoint: a besteffort job with a checkpoint delay is asked to checkpoint, then killed after it",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const be = await runningBesteffort(db, env.rids.slice(0, 4), now - 100);
    await db.sql`UPDATE jobs SET checkpoint = 60 WHERE job_id = ${be}`;
    const { jobId } = await submitJob(db.sql, { resources: 4, walltime: 600 });
    const signals: [string, number, string][] = [];
    const signaller = {
      signal: (host: string, id: number, sig: string) => {
        signals.push([host, id, sig]);
        return Promise.resolve(null);
      },
    };
    const round = (t: number) =>
      metaSchedRound({
        sql: db.sql,
        config: db.config,
        log,
        notifier: env.notifier,
        now: t,
        signaller,
      });
    const types = async () =>
      (await db.sql<{ type: string }[]>`SELECT type FROM event_logs WHERE job_id = ${be}
        ORDER BY event_id`).map((e) => e.type);
    // First round: asked to checkpoint (USR2 to its oarexec), not killed; nothing launched.
    let r = await round(now);
    assertEquals(r.exitCode, 2);
    assertEquals(signals, [["localhost", be, "USR2"]]);
    assertEquals(await types(), ["CHECKPOINT", "CHECKPOINT_SUCCESSFULL"]);
    assertOk(!(await fragged(db, be)));
    assertEquals(await jobState(db, jobId), "Waiting");
    // Within its 60 s: not asked again, still not killed, still nothing launched.
    const [{ asked }] = await db.sql<{ asked: number }[]>`
      SELECT date AS asked FROM event_logs WHERE job_id = ${be} AND type = 'CHECKPOINT'`;
    r = await round(asked + 60);
    assertEquals([r.exitCode, signals.length, await fragged(db, be)], [2, 1, false]);
    // Past it: killed.
    r = await round(asked + 61);
    assertEquals(r.exitCode, 2);
    assertOk(await fragged(db, be));
    assertEquals(signals.length, 1);
    assertEquals((await types()).at(-1), "BESTEFFORT_KILL");
    assertEquals(await jobState(db, jobId), "Waiting");
  },
);

dbTest("metasched ar_2: three reservations at one date for 4, 2, 1 of 5 resources", async (db) => {
  const env = await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  const ids = [];
  for (const n of [4, 2, 1]) {
    ids.push(
      await submitJob(db.sql, {
        resources: n,
        walltime: 600,
        reservationStart: now + 1000,
        infoType: oarsub.infoType,
      }),
    );
  }
  await env.round({}, now);
  const preds = await db.sql`SELECT * FROM gantt_jobs_predictions`;
  assertEquals(preds.length, 2);
  assertOk(await prediction(db, ids[0].moldableIds[0]));
  assertEquals(await prediction(db, ids[1].moldableIds[0]), null);
  assertOk(await prediction(db, ids[2].moldableIds[0]));
  assertEquals(await jobState(db, ids[1].jobId), "Error");
  assertStringIncludes((await jobRow(db, ids[1].jobId)).message, "cannot run");
  assertEquals(oarsub.lines.filter((l) => l === "GOOD RESERVATION").length, 2);
  assertOk(oarsub.lines.includes("BAD JOB"));
});

dbTest("metasched bug_toLaunch_absent: never launched on an Absent resource", async (db) => {
  const env = await setup(db);
  await addCluster(db.sql, ["localhost"], 1, { state: "Absent" });
  const { jobId, moldableIds } = await submitJob(db.sql, { resources: 6 });
  const r = await env.round();
  assertEquals(r.launched, []);
  assertEquals(await jobState(db, jobId), "Waiting");
  assertEquals((await prediction(db, moldableIds[0]))?.rids.length, 6);
});

// --- scheduling behaviour ---------------------------------------------------------------------

dbTest("metasched: backfilling fills a hole without delaying the job ahead", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  // Running: 3 of 5 resources for 1000 s.
  const run = await submitJob(db.sql, { resources: 3, walltime: 1000 });
  await makeRunning(db.sql, run.jobId, run.moldableIds[0], env.rids.slice(0, 3), now);
  const big = await submitJob(db.sql, { resources: 5, walltime: 100 }); // waits for the end
  const long = await submitJob(db.sql, { resources: 2, walltime: 5000 }); // would delay big
  const short = await submitJob(db.sql, { resources: 2, walltime: 900 }); // fits the hole
  const r = await env.round({}, now);
  const end = now + 1000 + 60;
  assertEquals((await prediction(db, big.moldableIds[0]))?.start, end);
  assertEquals((await prediction(db, long.moldableIds[0]))?.start, end + 100 + 60);
  assertEquals((await prediction(db, short.moldableIds[0]))?.start, now);
  assertEquals(r.launched, [short.jobId]);
});

dbTest("metasched: walltime boundaries to the second (#104)", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const run = await submitJob(db.sql, { resources: 5, walltime: 100 });
  await makeRunning(db.sql, run.jobId, run.moldableIds[0], env.rids, now - 40);
  const next = await submitJob(db.sql, { resources: 1, walltime: 1 });
  await env.round({}, now);
  // The running job occupies [now-40, now-40+100+60-1]: the next one starts the second after.
  assertEquals((await prediction(db, next.moldableIds[0]))?.start, now - 40 + 160);
});

dbTest("metasched: hierarchy and property constraints are respected", async (db) => {
  await referenceQueues(db.sql);
  const a = await addCluster(db.sql, ["node-a"], 4);
  const b = await addCluster(db.sql, ["node-b"], 4);
  const c = await addCluster(db.sql, ["node-c"], 4);
  const notifier = new RecordingNotifier();
  const config = db.config.with({ HIERARCHY_LABELS: "resource_id,network_address,cpu,core" });
  const j1 = await submitJob(db.sql, {
    properties: "network_address <> 'node-a'",
    moldables: [{ walltime: 600, groups: [{ levels: [["network_address", 2], ["core", 3]] }] }],
  });
  const j2 = await submitJob(db.sql, {
    moldables: [{
      walltime: 600,
      groups: [{ property: "network_address = 'node-a'", levels: [["core", 2]] }],
    }],
  });
  await metaSchedRound({ sql: db.sql, config, log, notifier });
  const p1 = (await prediction(db, j1.moldableIds[0]))!;
  assertEquals(p1.rids.length, 6);
  assertOk(p1.rids.every((r) => !a.includes(r)));
  assertEquals(p1.rids.filter((r) => b.includes(r)).length, 3);
  assertEquals(p1.rids.filter((r) => c.includes(r)).length, 3);
  const p2 = (await prediction(db, j2.moldableIds[0]))!;
  assertOk(p2.rids.every((r) => a.includes(r)));
  assertEquals(p2.rids.length, 2);
});

dbTest("metasched: the moldable finishing earliest is chosen", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const run = await submitJob(db.sql, { resources: 3, walltime: 1000 });
  await makeRunning(db.sql, run.jobId, run.moldableIds[0], env.rids.slice(0, 3), now);
  const j = await submitJob(db.sql, {
    moldables: [
      { walltime: 300, groups: [{ levels: [["resource_id", 5]] }] }, // ends now+1060+360
      { walltime: 1200, groups: [{ levels: [["resource_id", 2]] }] }, // ends now+1260
    ],
  });
  const r = await env.round({}, now);
  assertEquals(r.launched, [j.jobId]);
  assertEquals((await jobRow(db, j.jobId)).assigned_moldable_job, j.moldableIds[1]);
  assertEquals(await prediction(db, j.moldableIds[0]), null);
});

dbTest("metasched: ALL and BEST counts (#57)", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const run = await submitJob(db.sql, { resources: 2, walltime: 1000 });
  await makeRunning(db.sql, run.jobId, run.moldableIds[0], env.rids.slice(0, 2), now);
  const best = await submitJob(db.sql, {
    moldables: [{ walltime: 100, groups: [{ levels: [["resource_id", -2]] }] }],
  });
  const all = await submitJob(db.sql, {
    moldables: [{ walltime: 100, groups: [{ levels: [["resource_id", -1]] }] }],
  });
  await env.round({}, now);
  const pb = (await prediction(db, best.moldableIds[0]))!;
  assertEquals([pb.start, pb.rids.length], [now, 3]);
  const pa = (await prediction(db, all.moldableIds[0]))!;
  assertEquals([pa.start, pa.rids.length], [now + 1060, 5]);
});

dbTest("metasched: dependencies (Waiting, Error, failed Terminated, Hold)", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const a = await submitJob(db.sql, { resources: 5, walltime: 500 });
  const b = await submitJob(db.sql, { resources: 1, walltime: 10, dependencies: [a.jobId] });
  const err = await submitJob(db.sql, { state: "Error" });
  const c = await submitJob(db.sql, { resources: 1, walltime: 10, dependencies: [err.jobId] });
  const failed = await submitJob(db.sql, { state: "Terminated" });
  await db.sql`UPDATE jobs SET exit_code = 256 WHERE job_id = ${failed.jobId}`;
  const d = await submitJob(db.sql, { resources: 1, dependencies: [failed.jobId] });
  const held = await submitJob(db.sql, { state: "Hold" });
  const e = await submitJob(db.sql, { resources: 1, dependencies: [held.jobId] });
  const ok = await submitJob(db.sql, { state: "Terminated" });
  await db.sql`UPDATE jobs SET exit_code = 0 WHERE job_id = ${ok.jobId}`;
  const f = await submitJob(db.sql, { resources: 1, walltime: 10, dependencies: [ok.jobId] });
  const r = await env.round({}, now);
  assertEquals((await prediction(db, b.moldableIds[0]))?.start, now + 560);
  assertEquals((await prediction(db, c.moldableIds[0]))?.start, now + 560);
  assertEquals(await prediction(db, d.moldableIds[0]), null);
  assertStringIncludes((await jobRow(db, d.jobId)).message, "exit code 256");
  assertEquals(await prediction(db, e.moldableIds[0]), null);
  assertOk(r.skipped.has(e.jobId));
  assertEquals((await prediction(db, f.moldableIds[0]))?.start, now + 560);
  assertEquals(r.launched, [a.jobId]);
});

dbTest("metasched: a broken property filter skips its job only (#47)", async (db) => {
  const env = await setup(db);
  const bad = await submitJob(db.sql, { properties: "no_such_column = 1" });
  const evil = await submitJob(db.sql, { properties: "1=1; DELETE FROM jobs" });
  const writer = await submitJob(db.sql, {
    properties: "resource_id IN (SELECT 1 FROM (SELECT setval('jobs_job_id_seq', 1)) s)",
  });
  const weird = await submitJob(db.sql, { properties: "1=1) OR (1=1", resources: 1 });
  const good = await submitJob(db.sql, {
    resources: 2,
    properties: "network_address = 'localhost'",
  });
  const r = await env.round();
  assertStringIncludes((await jobRow(db, bad.jobId)).message, "bad properties");
  assertStringIncludes((await jobRow(db, evil.jobId)).message, "bad properties");
  assertStringIncludes((await jobRow(db, writer.jobId)).message, "bad properties");
  assertEquals(await jobState(db, bad.jobId), "Waiting");
  assertOk(r.launched.includes(good.jobId));
  assertOk(r.launched.includes(weird.jobId));
  const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM jobs`;
  assertEquals(n, 5);
});

dbTest(
  "metasched: an unknown resource label or empty request is skipped with a message",
  async (db) => {
    const env = await setup(db);
    const odd = await submitJob(db.sql, {
      moldables: [{ walltime: 60, groups: [{ levels: [["gpu", 1]] }] }],
    });
    const empty = await submitJob(db.sql, { moldables: [{ walltime: 60, groups: [] }] });
    const huge = await submitJob(db.sql, { resources: 50 });
    const good = await submitJob(db.sql, { resources: 1 });
    const r = await env.round();
    assertStringIncludes((await jobRow(db, odd.jobId)).message, "gpu");
    assertStringIncludes((await jobRow(db, empty.jobId)).message, "empty");
    assertStringIncludes((await jobRow(db, huge.jobId)).message, "not enough resources");
    assertEquals(r.launched, [good.jobId]);
  },
);

// --- reservations -----------------------------------------------------------------------------

dbTest("metasched: a reservation too old, and an expired accepted one, go to Error", async (db) => {
  const env = await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  const old = await submitJob(db.sql, {
    resources: 1,
    walltime: 100,
    reservationStart: now - 100,
    infoType: oarsub.infoType,
  });
  const expired = await scheduledReservation(db, now - 3601, env.rids.slice(0, 1));
  await env.round({}, now);
  const o = await jobRow(db, old.jobId);
  assertEquals([o.state, o.reservation, o.message], ["Error", "Scheduled", "Reservation too old"]);
  assertEquals(oarsub.lines, ["Reservation too old", "BAD JOB"]);
  const e = await jobRow(db, expired.jobId);
  assertEquals([e.state, e.message], ["Error", "Reservation expired and couldn't be started."]);
});

dbTest("metasched: a reservation starting late loses the delay from its walltime", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const ar = await scheduledReservation(db, now - 30, env.rids.slice(0, 2));
  await db.sql`UPDATE jobs SET message = 'R=2,W=1:00:00,J=R,Q=default' WHERE job_id = ${ar.jobId}`;
  const r = await env.round({}, now);
  assertEquals(r.launched, [ar.jobId]);
  const [m] = await db.sql`SELECT moldable_walltime FROM moldable_job_descriptions
    WHERE moldable_id = ${ar.moldableId}`;
  assertEquals(m.moldable_walltime, 3600 - 30);
  assertStringIncludes((await jobRow(db, ar.jobId)).message, "W=0:59:30");
  const ev = await db.sql`SELECT 1 FROM event_logs
    WHERE type = 'REDUCE_RESERVATION_WALLTIME' AND job_id = ${ar.jobId}`;
  assertEquals(ev.length, 1);
  assertEquals((await prediction(db, ar.moldableId))?.start, now);
  // The `_visu` copy is taken once the launch has moved the start.
  const [v] = await db.sql`SELECT start_time FROM gantt_jobs_predictions_visu
    WHERE moldable_job_id = ${ar.moldableId}`;
  assertEquals(v.start_time, now);
  const vr = await db.sql`SELECT resource_id FROM gantt_jobs_resources_visu
    WHERE moldable_job_id = ${ar.moldableId} ORDER BY resource_id`;
  assertEquals(vr.map((x) => Number(x.resource_id)), env.rids.slice(0, 2));
});

dbTest("metasched: a reservation whose resources are missing waits, then shrinks", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const ar = await scheduledReservation(db, now - 10, env.rids.slice(0, 2));
  await db.sql`UPDATE jobs SET message = 'R=2,W=1:00:00,J=R,Q=default' WHERE job_id = ${ar.jobId}`;
  await db.sql`UPDATE resources SET state = 'Suspected' WHERE resource_id = ${env.rids[0]}`;
  const r1 = await env.round({}, now);
  assertEquals(r1.launched, []);
  assertEquals((await prediction(db, ar.moldableId))?.start, now + 1);
  // After RESERVATION_WAITING_RESOURCES_TIMEOUT the missing resource is dropped.
  const r2 = await env.round({}, now + 400);
  assertEquals((await prediction(db, ar.moldableId))?.rids, [env.rids[1]]);
  const visu = await db.sql`SELECT resource_id FROM gantt_jobs_resources_visu
    WHERE moldable_job_id = ${ar.moldableId}`;
  assertEquals(visu.map((x) => Number(x.resource_id)), [env.rids[1]]);
  assertStringIncludes((await jobRow(db, ar.jobId)).message, "R=1");
  const ev = await db.sql`SELECT 1 FROM event_logs
    WHERE type = 'SCHEDULER_REDUCE_NB_RESSOURCES_FOR_RESERVATION' AND job_id = ${ar.jobId}`;
  assertEquals(ev.length, 1);
  void r2;
});

dbTest(
  "metasched: oarsub unreachable for a reservation ⇒ CANNOT_NOTIFY_OARSUB, frag, exit 2",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const { jobId } = await submitJob(db.sql, {
      resources: 1,
      reservationStart: now + 100,
      infoType: REFUSED_ADDRESS,
    });
    const r = await env.round({}, now);
    assertEquals(r.exitCode, 2);
    assertOk(await fragged(db, jobId));
    const ev = await db.sql`SELECT 1 FROM event_logs
    WHERE type = 'CANNOT_NOTIFY_OARSUB' AND job_id = ${jobId}`;
    assertEquals(ev.length, 1);
  },
);

dbTest("meta_sched module: a real child process with its permission flags", async (db) => {
  await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  const job = await submitJob(db.sql, { resources: 2 });
  const ar = await submitJob(db.sql, {
    resources: 1,
    reservationStart: now + 1000,
    infoType: oarsub.infoType,
  });
  const conf = await writeConfigFile(db, {
    APPENDICE_SERVER_PORT: await freePort(),
    BIPBIP_COMMANDER_PORT: await freePort(),
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
  });
  const r = await runEntry("meta_sched", conf);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await jobState(db, job.jobId), "toLaunch");
  assertEquals((await jobRow(db, ar.jobId)).reservation, "Scheduled");
  assertEquals(await jobState(db, ar.jobId), "Waiting");
  assertEquals(oarsub.lines, ["GOOD RESERVATION"]);
});

// --- #61: no oversubscription over random workloads ----------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

dbTest(
  "metasched property (#61): random workloads never give a resource twice at once",
  async (db) => {
    await referenceQueues(db.sql);
    const rids = await addCluster(db.sql, ["n1", "n2", "n3", "n4"], 4);
    const notifier = new RecordingNotifier();
    const config = db.config.with({ HIERARCHY_LABELS: "resource_id,network_address,cpu,core" });
    let now = await dbNow(db.sql);
    const r = rng(61);
    for (let round = 0; round < 8; round++) {
      for (let k = 0; k < 8; k++) {
        const w = 30 + Math.floor(r() * 900);
        const kind = r();
        const queue = r() < 0.15 ? "besteffort" : "default";
        const groups = kind < 0.5
          ? [{ levels: [["resource_id", 1 + Math.floor(r() * 12)]] as [string, number][] }]
          : [{
            levels: [["network_address", 1 + Math.floor(r() * 3)], [
              "core",
              1 + Math.floor(r() * 4),
            ]] as [
              string,
              number,
            ][],
          }];
        if (r() < 0.1) {
          await submitJob(db.sql, {
            moldables: [{ walltime: w, groups }],
            reservationStart: now + Math.floor(r() * 2000),
          });
        } else {
          await submitJob(db.sql, {
            queue,
            types: queue === "besteffort" ? ["besteffort"] : [],
            moldables: [{ walltime: w, groups }, {
              walltime: w * 2,
              groups: [{ levels: [["resource_id", 1]] }],
            }],
          });
        }
      }
      await roundRunner(db.sql, config, log, notifier)(now);
      // Launched jobs "run"; some finish.
      await db.sql`UPDATE jobs SET state = 'Running' WHERE state = 'toLaunch'`;
      await db.sql`UPDATE jobs SET state = 'Terminated' WHERE state = 'Running' AND job_id % 3 = ${
        round % 3
      }`;
      // Besteffort jobs fragged by the round are gone by the next one (Leon's work).
      await db
        .sql`UPDATE jobs SET state = 'Error' WHERE job_id IN (SELECT frag_id_job FROM frag_jobs)`;
      const occ = await db.sql<
        { job_id: number; start: number; stop: number; be: boolean; rids: number[] }[]
      >`
      SELECT j.job_id, g.start_time AS start, g.start_time + m.moldable_walltime AS stop,
        j.queue_name = 'besteffort' AS be,
        array_agg(r.resource_id) AS rids
      FROM gantt_jobs_predictions g
      JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
      JOIN jobs j ON j.job_id = m.moldable_job_id
      JOIN gantt_jobs_resources r ON r.moldable_job_id = g.moldable_job_id
      WHERE j.state NOT IN ('Error', 'Terminated')
      GROUP BY j.job_id, g.start_time, m.moldable_walltime, j.queue_name`;
      for (let i = 0; i < occ.length; i++) {
        for (let k = i + 1; k < occ.length; k++) {
          const a = occ[i], b = occ[k];
          if (a.be !== b.be) continue; // besteffort jobs in the way are killed, not shared
          if (a.start < b.stop && b.start < a.stop) {
            const shared = a.rids.filter((x) => b.rids.includes(x));
            assertEquals(
              shared,
              [],
              `round ${round}: jobs ${a.job_id} and ${b.job_id} share ${shared}`,
            );
          }
        }
      }
      now += 200 + Math.floor(r() * 400);
    }
    void rids;
  },
);

// --- fairsharing (JOB_PRIORITY=FAIRSHARE) -------------------------------------------------------

dbTest(
  "metasched FAIRSHARE: the lighter consumer goes first; karma stored and shown",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    // alice used most of the cluster over the last days, bob little.
    for (const [user, used] of [["alice", 9000], ["bob", 1000]] as const) {
      for (const type of ["USED", "ASKED"] as const) {
        await addAccounting(db.sql, {
          start: now - 86400,
          stop: now - 3600,
          user,
          type,
          consumption: used,
        });
      }
    }
    // Both need the whole cluster: one runs now, the other after it.
    const a = await submitJob(db.sql, { user: "alice", resources: 5, walltime: 600 });
    const b = await submitJob(db.sql, { user: "bob", resources: 5, walltime: 600 });
    // FIFO (the default) favours alice's older job...
    const fifo = await env.round({}, now);
    assertEquals(fifo.launched, [a.jobId]);
    await db.sql`UPDATE jobs SET state = 'Waiting', start_time = 0, assigned_moldable_job = 0
    WHERE job_id = ${a.jobId}`;
    await db.sql`DELETE FROM assigned_resources`;
    // ...fairsharing favours bob: karma 0.1 + 0.1 against 0.9 + 0.9.
    const fair = await env.round({ JOB_PRIORITY: "FAIRSHARE" }, now);
    assertEquals(fair.launched, [b.jobId]);
    assertEquals((await prediction(db, a.moldableIds[0]))?.start, now + 600 + 60);
    const rows = await db.sql<{ job_id: number; last_karma: number; message: string }[]>`
    SELECT job_id, last_karma, message FROM jobs ORDER BY job_id`;
    assertOk(Math.abs(rows[0].last_karma - 1.8) < 1e-6, `alice's karma ${rows[0].last_karma}`);
    assertOk(Math.abs(rows[1].last_karma - 0.2) < 1e-6, `bob's karma ${rows[1].last_karma}`);
    assertStringIncludes(rows[0].message, "(Karma=1.800)");
    assertStringIncludes(rows[1].message, "(Karma=0.200)");
  },
);

// --- timesharing ----------------------------------------------------------------------------------

dbTest(
  "metasched timesharing: compatible jobs share the nodes, incompatible ones wait",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const ts = (user: string, t: string, name: string | null = null) =>
      submitJob(db.sql, { user, name, resources: 5, walltime: 600, types: [`timesharing=${t}`] });
    const a1 = await ts("alice", "user,*");
    const a2 = await ts("alice", "user,*"); // same user: shares with a1
    const b1 = await ts("bob", "user,*"); // another user: cannot share with alice's jobs
    const c1 = await ts("carol", "*,*"); // another mode: shares with no user,* job
    const r = await env.round({}, now);
    assertEquals(r.launched, [a1.jobId, a2.jobId]);
    const pa1 = await prediction(db, a1.moldableIds[0]);
    const pa2 = await prediction(db, a2.moldableIds[0]);
    assertEquals(pa2, pa1);
    const pb1 = await prediction(db, b1.moldableIds[0]);
    const pc1 = await prediction(db, c1.moldableIds[0]);
    assertEquals(pb1?.start, now + 660);
    assertEquals(pc1?.start, now + 1320);
    // The next round sees a1 and a2 running and still lets a third alice job in beside them,
    // while a plain job of alice's waits for the resources to be free.
    await db.sql`UPDATE jobs SET state = 'Running' WHERE state = 'toLaunch'`;
    // (Short enough to end before bob's job, which holds its reservation from now + 660.)
    const a3 = await submitJob(db.sql, {
      user: "alice",
      resources: 5,
      walltime: 300,
      types: ["timesharing=user,*"],
    });
    const plain = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 60 });
    const r2 = await env.round({}, now + 10);
    assertEquals(r2.launched, [a3.jobId]);
    assertOk((await prediction(db, plain.moldableIds[0]))!.start >= now + 660, "plain job waits");
  },
);

dbTest("metasched timesharing: *,name shares across users by job name only", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const ts = (user: string, name: string) =>
    submitJob(db.sql, { user, name, resources: 3, walltime: 600, types: ["timesharing=*,name"] });
  const x1 = await ts("alice", "x");
  const x2 = await ts("bob", "x");
  const y1 = await ts("carol", "y");
  const r = await env.round({}, now);
  // x1 and x2 share 3 resources; y1 needs 3 of the 2 left: it waits.
  assertEquals(r.launched, [x1.jobId, x2.jobId]);
  assertEquals((await prediction(db, y1.moldableIds[0]))?.start, now + 660);
});

dbTest("metasched timesharing: a compatible besteffort job is not killed", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const running = async (rids: number[], user: string) => {
    const { jobId, moldableIds } = await submitJob(db.sql, {
      user,
      queue: "besteffort",
      types: ["besteffort", "timesharing=user,*"],
      resources: rids.length,
      walltime: 36000,
    });
    await makeRunning(db.sql, jobId, moldableIds[0], rids, now - 100);
    return jobId;
  };
  const mine = await running(env.rids.slice(0, 2), "alice");
  const others = await running(env.rids.slice(2, 4), "bob");
  const j = await submitJob(db.sql, {
    user: "alice",
    resources: 4,
    walltime: 600,
    types: ["timesharing=user,*"],
  });
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 2);
  assertEquals(r.fragged, [others]);
  assertOk(!(await fragged(db, mine)), "alice's besteffort job shares with her job");
  // bob's job gone (Leon's work), alice's job starts beside her besteffort one.
  await db.sql`UPDATE jobs SET state = 'Error' WHERE job_id = ${others}`;
  const r2 = await env.round({}, now + 1);
  assertEquals(r2.launched, [j.jobId]);
});

// --- step 12: start predictions to interactive oarsub ------------------------------------------

dbTest("metasched: a waiting interactive job is told its start prediction", async (db) => {
  const env = await setup(db);
  await using oarsub = new FakeOarsub();
  const now = await dbNow(db.sql);
  await submitJob(db.sql, { resources: 5, walltime: 600 });
  const { jobId, moldableIds } = await submitJob(db.sql, {
    resources: 5,
    walltime: 300,
    jobType: "INTERACTIVE",
    infoType: oarsub.infoType,
  });
  const r = await env.round({}, now);
  assertEquals(r.exitCode, 0);
  assertEquals((await prediction(db, moldableIds[0]))?.start, now + 660);
  const { message } = await jobRow(db, jobId);
  await waitFor("the prediction line", () => oarsub.lines.length === 1, 5000);
  assertEquals(oarsub.lines, [
    `[${sqlTime(now)}] Start prediction: ${sqlTime(now + 660)} (${message})`,
  ]);
  assertStringIncludes(message, "J=I");
  assertEquals(await fragged(db, jobId), false);
});

dbTest(
  "metasched: an interactive job whose oarsub is gone is fragged (LOST_SESSION)",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    await submitJob(db.sql, { resources: 5, walltime: 600 });
    const { jobId } = await submitJob(db.sql, {
      resources: 5,
      jobType: "INTERACTIVE",
      infoType: REFUSED_ADDRESS,
    });
    await env.round({}, now);
    assertOk(await fragged(db, jobId));
    const ev = await db.sql`SELECT type FROM event_logs WHERE job_id = ${jobId} ORDER BY event_id`;
    assertEquals(ev.map((e) => e.type), ["LOST_SESSION", "FRAG_JOB_REQUEST"]);
    assertOk(env.notifier.almightyCommands.includes("Qdel"));
  },
);

dbTest(
  "metasched property (#61): with timesharing jobs, only compatible jobs ever share",
  async (db) => {
    await referenceQueues(db.sql);
    await addCluster(db.sql, ["n1", "n2", "n3"], 4);
    const notifier = new RecordingNotifier();
    const config = db.config.with({ HIERARCHY_LABELS: "resource_id,network_address,cpu,core" });
    let now = await dbNow(db.sql);
    const r = rng(6161);
    const modes = [null, null, "user,*", "*,*", "*,name", "user,name"];
    const users = ["alice", "bob"];
    let sharing = 0; // pairs of compatible jobs found sharing: the property is not vacuous
    const names = ["x", "y"];
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 10; k++) {
        const mode = modes[Math.floor(r() * modes.length)];
        await submitJob(db.sql, {
          user: users[Math.floor(r() * users.length)],
          name: names[Math.floor(r() * names.length)],
          resources: 1 + Math.floor(r() * 10),
          walltime: 30 + Math.floor(r() * 900),
          types: mode === null ? [] : [`timesharing=${mode}`],
        });
      }
      await roundRunner(db.sql, config, log, notifier)(now);
      await db.sql`UPDATE jobs SET state = 'Running' WHERE state = 'toLaunch'`;
      await db.sql`UPDATE jobs SET state = 'Terminated' WHERE state = 'Running' AND job_id % 4 = ${
        round % 4
      }`;
      const occ = await db.sql<
        {
          job_id: number;
          start: number;
          stop: number;
          job_user: string;
          job_name: string;
          ts: string | null;
          rids: number[];
        }[]
      >`
      SELECT j.job_id, g.start_time AS start, g.start_time + m.moldable_walltime AS stop,
        j.job_user, j.job_name,
        (SELECT t.type FROM job_types t WHERE t.job_id = j.job_id LIMIT 1) AS ts,
        array_agg(r.resource_id) AS rids
      FROM gantt_jobs_predictions g
      JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
      JOIN jobs j ON j.job_id = m.moldable_job_id
      JOIN gantt_jobs_resources r ON r.moldable_job_id = g.moldable_job_id
      WHERE j.state NOT IN ('Error', 'Terminated')
      GROUP BY j.job_id, g.start_time, m.moldable_walltime`;
      const key = (o: typeof occ[number]) =>
        timesharingKey(o.ts ? [o.ts] : [], o.job_user, o.job_name);
      for (let i = 0; i < occ.length; i++) {
        for (let k = i + 1; k < occ.length; k++) {
          const a = occ[i], b = occ[k];
          if (!(a.start < b.stop && b.start < a.stop)) continue;
          const shared = a.rids.filter((x) => b.rids.includes(x));
          if (shared.length === 0) continue;
          sharing++;
          assertOk(
            key(a) !== null && key(a) === key(b),
            `round ${round}: jobs ${a.job_id} (${a.ts}) and ${b.job_id} (${b.ts}) share ${shared}`,
          );
        }
      }
      now += 200 + Math.floor(r() * 400);
    }
    assertOk(sharing > 0, "some timesharing jobs shared resources");
  },
);

dbTest(
  "metasched: a round that changes no plan writes no waiting job; a new message is written",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const run = await submitJob(db.sql, { resources: 5, walltime: 1000 });
    await makeRunning(db.sql, run.jobId, run.moldableIds[0], env.rids, now);
    const a = await submitJob(db.sql, { resources: 2, walltime: 100 });
    const b = await submitJob(db.sql, { resources: 9, walltime: 100 }); // can never fit
    await env.round({}, now);
    const versions = () =>
      db.sql<{ job_id: number; xmin: string; message: string }[]>`
      SELECT job_id, xmin::text, message FROM jobs WHERE job_id IN (${a.jobId}, ${b.jobId})
      ORDER BY job_id`;
    const first = await versions();
    assertOk(first.every((j) => j.message !== ""), JSON.stringify(first));
    // The same plan again: the rows are not rewritten (no new row version).
    await env.round({}, now + 1);
    assertEquals(await versions(), first);
    // A message that differs from the plan's is written again.
    await db.sql`UPDATE jobs SET message = 'stale' WHERE job_id = ${a.jobId}`;
    await env.round({}, now + 2);
    assertEquals((await jobRow(db, a.jobId)).message, first[0].message);
  },
);
