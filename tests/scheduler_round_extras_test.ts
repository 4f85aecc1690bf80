/**
 * Meta-scheduler rounds on a real database for Kamelot's extras (docs/modules.md §11 "Extras"):
 * container and inner jobs, placeholders, and the per-round job limit under fairsharing. Set-up as
 * the reference's test_db_metasched.py: 5 resources on host `localhost`, queues default (prio 3)
 * and besteffort (prio 0), security time 60 s.
 */
import { Config } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import type { RoundReport } from "../modules/meta_sched/round.ts";
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
import { createTestDb, type TestDb } from "./support/testdb.ts";

const log = moduleLogger("meta_sched");
const SECURITY = 60;

interface Env {
  rids: number[];
  round: (now: number, extra?: Record<string, string | number>) => Promise<RoundReport>;
}

async function setup(db: TestDb): Promise<Env> {
  await referenceQueues(db.sql);
  const rids = await addCluster(db.sql, ["localhost"], 5);
  const notifier = new RecordingNotifier();
  const base = new Config({
    ...Object.fromEntries(db.config.entries()),
    SCHEDULER_JOB_SECURITY_TIME: SECURITY,
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
  });
  return { rids, round: roundRunner(db.sql, base, log, notifier) };
}

const prediction = (db: TestDb, moldableId: number) => plannedPlacement(db.sql, moldableId);

async function job(db: TestDb, id: number) {
  const [r] = await db.sql<{ state: string; message: string }[]>`
    SELECT state, message FROM jobs WHERE job_id = ${id}`;
  return r;
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(name, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

const within = (inner: number[], outer: number[]) => inner.every((r) => outer.includes(r));

// --- containers -----------------------------------------------------------------------------

dbTest(
  "containers: inner jobs are placed inside their container's resources and window",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const c = await submitJob(db.sql, { resources: 3, walltime: 3600, types: ["container"] });
    const inner = (n: number, w: number) =>
      submitJob(db.sql, { resources: n, walltime: w, types: [`inner=${c.jobId}`] });
    const i1 = await inner(2, 600);
    const i2 = await inner(3, 600);
    // A plain job needing the 2 resources the container leaves: it starts now, beside it.
    const plain = await submitJob(db.sql, { resources: 2, walltime: 600 });
    const r = await env.round(now);
    const pc = (await prediction(db, c.moldableIds[0]))!;
    const p1 = (await prediction(db, i1.moldableIds[0]))!;
    const p2 = (await prediction(db, i2.moldableIds[0]))!;
    const pp = (await prediction(db, plain.moldableIds[0]))!;
    assertEquals(pc.start, now);
    assertEquals(pc.rids.length, 3);
    // Inner jobs take none of the default Gantt's resources: the plain job runs at once.
    assertEquals(pp.start, now);
    assertEquals(pp.rids.filter((x) => pc.rids.includes(x)), []);
    assertEquals(p1.start, now);
    assertOk(within(p1.rids, pc.rids), `inner job 1 on ${p1.rids}, container ${pc.rids}`);
    // The second inner job needs the whole container: after the first one (and its security).
    assertEquals(p2.start, now + 600 + SECURITY);
    assertEquals(p2.rids, pc.rids);
    assertEquals(
      r.launched.sort((a, b) => a - b),
      [c.jobId, i1.jobId, plain.jobId].sort((a, b) => a - b),
    );
  },
);

dbTest(
  "containers: an inner job in a queue scheduled before its container's is placed the same round",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    // A queue scheduled before default's (priority 3).
    await db.sql`INSERT INTO queues (queue_name, priority, scheduler_policy, state)
      VALUES ('admin', 10, 'kamelot', 'Active')`;
    const c = await submitJob(db.sql, { resources: 2, walltime: 3600, types: ["container"] });
    const i = await submitJob(db.sql, {
      resources: 1,
      walltime: 600,
      types: [`inner=${c.jobId}`],
      queue: "admin",
    });
    const r = await env.round(now);
    const pc = (await prediction(db, c.moldableIds[0]))!;
    const pi = (await prediction(db, i.moldableIds[0]))!;
    assertEquals(pi.start, now);
    assertOk(within(pi.rids, pc.rids), `inner job on ${pi.rids}, container ${pc.rids}`);
    assertEquals(r.launched.sort((a, b) => a - b), [c.jobId, i.jobId].sort((a, b) => a - b));
    assertStringIncludes((await job(db, i.jobId)).message, "R=1");
  },
);

dbTest(
  "containers: an inner job whose container is neither scheduled nor running waits; the round goes on",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const gone = await submitJob(db.sql, { resources: 1, types: ["container"] });
    await db.sql`UPDATE jobs SET state = 'Terminated' WHERE job_id = ${gone.jobId}`;
    const orphan = await submitJob(db.sql, { resources: 1, types: [`inner=${gone.jobId}`] });
    const nowhere = await submitJob(db.sql, { resources: 1, types: ["inner=99999"] });
    const plain = await submitJob(db.sql, { resources: 1, walltime: 600 });
    const r = await env.round(now);
    assertEquals(r.launched, [plain.jobId]);
    for (const j of [orphan, nowhere]) {
      assertEquals((await job(db, j.jobId)).state, "Waiting");
      assertEquals(await prediction(db, j.moldableIds[0]), null);
    }
    assertStringIncludes(
      (await job(db, orphan.jobId)).message,
      `container ${gone.jobId} is not scheduled or running`,
    );
    assertStringIncludes((await job(db, nowhere.jobId)).message, "container 99999");
    // Once its container is submitted and scheduled, an inner job of it is placed: the
    // container is found by id even when it comes in a later round.
    const c = await submitJob(db.sql, { resources: 2, walltime: 3600, types: ["container"] });
    const late = await submitJob(db.sql, {
      resources: 1,
      walltime: 600,
      types: [`inner=${c.jobId}`],
    });
    await env.round(now);
    const pc = (await prediction(db, c.moldableIds[0]))!;
    const pl = (await prediction(db, late.moldableIds[0]))!;
    assertEquals(pl.start, now);
    assertOk(within(pl.rids, pc.rids));
  },
);

dbTest(
  "containers: an inner job that cannot fit in its container never runs beyond it",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    // Running container on 3 resources since now-500, walltime 600: 100 s left.
    const c = await submitJob(db.sql, { resources: 3, walltime: 600, types: ["container"] });
    await makeRunning(db.sql, c.jobId, c.moldableIds[0], env.rids.slice(0, 3), now - 500);
    // 60 s + 60 s of security: more than the 100 s left.
    const tooLong = await submitJob(db.sql, {
      resources: 1,
      walltime: 60,
      types: [`inner=${c.jobId}`],
    });
    // More resources than the container has.
    const tooWide = await submitJob(db.sql, {
      resources: 4,
      walltime: 10,
      types: [`inner=${c.jobId}`],
    });
    // Fits: 30 + 60 s within the 100 s left, on the container's resources.
    const fits = await submitJob(db.sql, {
      resources: 3,
      walltime: 30,
      types: [`inner=${c.jobId}`],
    });
    const r = await env.round(now);
    for (const j of [tooLong, tooWide]) {
      assertEquals(await prediction(db, j.moldableIds[0]), null);
      assertEquals((await job(db, j.jobId)).state, "Waiting");
      assertStringIncludes(
        (await job(db, j.jobId)).message,
        `does not fit in container ${c.jobId}`,
      );
    }
    const pf = (await prediction(db, fits.moldableIds[0]))!;
    assertEquals(pf, { start: now, rids: env.rids.slice(0, 3) });
    assertEquals(r.launched, [fits.jobId]);
  },
);

dbTest(
  "containers: running inner jobs are counted inside their container",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const c = await submitJob(db.sql, { resources: 3, walltime: 3600, types: ["container"] });
    await makeRunning(db.sql, c.jobId, c.moldableIds[0], env.rids.slice(0, 3), now - 100);
    const running = await submitJob(db.sql, {
      resources: 1,
      walltime: 1000,
      types: [`inner=${c.jobId}`],
    });
    await makeRunning(db.sql, running.jobId, running.moldableIds[0], [env.rids[0]], now - 100);
    const whole = await submitJob(db.sql, {
      resources: 3,
      walltime: 300,
      types: [`inner=${c.jobId}`],
    });
    const two = await submitJob(db.sql, {
      resources: 2,
      walltime: 300,
      types: [`inner=${c.jobId}`],
    });
    // A named container: `container=<name>`, `inner=<name>`.
    const named = await submitJob(db.sql, {
      resources: 2,
      walltime: 3600,
      types: ["container=grp"],
    });
    const inNamed = await submitJob(db.sql, { resources: 1, walltime: 60, types: ["inner=grp"] });
    await env.round(now);
    // The whole container once the running inner job is gone (started now-100, 1000 s + 60).
    assertEquals(await prediction(db, whole.moldableIds[0]), {
      start: now - 100 + 1000 + SECURITY,
      rids: env.rids.slice(0, 3),
    });
    // Two resources are free inside it now... but `whole` holds them from its start: `two`
    // (300 + 60 s) fits before, on the two resources the running inner job leaves.
    assertEquals(await prediction(db, two.moldableIds[0]), {
      start: now,
      rids: env.rids.slice(1, 3),
    });
    const pn = (await prediction(db, named.moldableIds[0]))!;
    assertEquals(pn, { start: now, rids: env.rids.slice(3, 5) });
    const pi = (await prediction(db, inNamed.moldableIds[0]))!;
    assertOk(within(pi.rids, pn.rids));
  },
);

// --- placeholders ---------------------------------------------------------------------------

dbTest(
  "placeholders: held resources go only to jobs allowed into them, which consume them",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const ph = await submitJob(db.sql, {
      resources: 3,
      walltime: 3600,
      types: ["placeholder=night"],
    });
    await makeRunning(db.sql, ph.jobId, ph.moldableIds[0], env.rids.slice(0, 3), now - 10);
    const other = await submitJob(db.sql, { resources: 2, walltime: 3600 });
    await makeRunning(db.sql, other.jobId, other.moldableIds[0], env.rids.slice(3, 5), now - 10);
    // Not allowed: waits for a resource to be really free.
    const plain = await submitJob(db.sql, { resources: 1, walltime: 600 });
    // Allowed: runs now on the placeholder's resources...
    const b = await submitJob(db.sql, { resources: 2, walltime: 600, types: ["allow=night"] });
    // ...and consumes them: one is left, so the next allowed job waits for b.
    const c = await submitJob(db.sql, { resources: 2, walltime: 600, types: ["allow=night"] });
    // Another placeholder's name opens nothing.
    const d = await submitJob(db.sql, { resources: 1, walltime: 600, types: ["allow=day"] });
    const r = await env.round(now);
    const pb = (await prediction(db, b.moldableIds[0]))!;
    assertEquals(pb.start, now);
    assertOk(within(pb.rids, env.rids.slice(0, 3)), `b on ${pb.rids}`);
    assertEquals((await prediction(db, c.moldableIds[0]))!.start, now + 600 + SECURITY);
    const busyUntil = now - 10 + 3600 + SECURITY;
    assertEquals((await prediction(db, plain.moldableIds[0]))!.start, busyUntil);
    assertEquals((await prediction(db, d.moldableIds[0]))!.start, busyUntil);
    assertEquals(r.launched, [b.jobId]);
  },
);

dbTest("placeholders: a placeholder placed this round holds for allowed jobs", async (db) => {
  const env = await setup(db);
  const now = await dbNow(db.sql);
  const ph = await submitJob(db.sql, {
    resources: 5,
    walltime: 3600,
    types: ["placeholder=p"],
  });
  const plain = await submitJob(db.sql, { resources: 1, walltime: 60 });
  const allowed = await submitJob(db.sql, { resources: 5, walltime: 60, types: ["allow=p"] });
  await env.round(now);
  assertEquals((await prediction(db, ph.moldableIds[0]))!.start, now);
  assertEquals((await prediction(db, allowed.moldableIds[0]))!.start, now);
  assertEquals((await prediction(db, plain.moldableIds[0]))!.start, now + 3600 + SECURITY);
});

dbTest(
  "placeholders and timesharing: an advance reservation shares as a job does",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    const ph = await submitJob(db.sql, { resources: 3, walltime: 7200, types: ["placeholder=n"] });
    await makeRunning(db.sql, ph.jobId, ph.moldableIds[0], env.rids.slice(0, 3), now - 10);
    const ts = await submitJob(db.sql, {
      resources: 2,
      walltime: 7200,
      types: ["timesharing=*,*"],
    });
    await makeRunning(db.sql, ts.jobId, ts.moldableIds[0], env.rids.slice(3, 5), now - 10);
    const at = now + 600;
    // Allowed into the placeholder: accepted on its resources, which it consumes.
    const allowed = await submitJob(db.sql, {
      resources: 3,
      walltime: 600,
      types: ["allow=n"],
      reservationStart: at,
    });
    const second = await submitJob(db.sql, {
      resources: 1,
      walltime: 600,
      types: ["allow=n"],
      reservationStart: at,
    });
    // Timesharing with the running job: accepted beside it; without the type: refused.
    const sharing = await submitJob(db.sql, {
      resources: 2,
      walltime: 600,
      types: ["timesharing=*,*"],
      reservationStart: at,
    });
    const plain = await submitJob(db.sql, { resources: 1, walltime: 600, reservationStart: at });
    await env.round(now);
    // Accepted: told GOOD RESERVATION, Waiting for its start; refused: Error.
    const state = async (id: number) =>
      (await db.sql<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${id}`)[0].state;
    assertEquals(await state(allowed.jobId), "Waiting");
    assertOk(within((await prediction(db, allowed.moldableIds[0]))!.rids, env.rids.slice(0, 3)));
    assertEquals(await state(second.jobId), "Error");
    assertEquals(await state(sharing.jobId), "Waiting");
    assertOk(within((await prediction(db, sharing.moldableIds[0]))!.rids, env.rids.slice(3, 5)));
    assertEquals(await state(plain.jobId), "Error");
  },
);

// --- the per-round limit under fairsharing -------------------------------------------------

dbTest(
  "FAIRSHARE: MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND applies after the karma sort",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    for (const type of ["USED", "ASKED"] as const) {
      await addAccounting(db.sql, {
        start: now - 86400,
        stop: now - 3600,
        user: "alice",
        type,
        consumption: 9000,
      });
      await addAccounting(db.sql, {
        start: now - 86400,
        stop: now - 3600,
        user: "bob",
        type,
        consumption: 1000,
      });
    }
    const a = [];
    for (let i = 0; i < 3; i++) {
      a.push(await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 }));
    }
    const b = await submitJob(db.sql, { user: "bob", resources: 1, walltime: 600 });
    const limit = { MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND: 2 };
    // FIFO: the two oldest jobs.
    const fifo = await env.round(now, limit);
    assertEquals(fifo.launched, [a[0].jobId, a[1].jobId]);
    await db.sql`UPDATE jobs SET state = 'Waiting', start_time = 0, assigned_moldable_job = 0`;
    await db.sql`DELETE FROM assigned_resources`;
    // Fairsharing: bob's job has the lowest karma, it is among the two scheduled although it
    // is the youngest; then alice's oldest.
    const fair = await env.round(now, { ...limit, JOB_PRIORITY: "FAIRSHARE" });
    assertEquals(fair.launched.sort((x, y) => x - y), [a[0].jobId, b.jobId]);
    assertEquals(await prediction(db, a[1].moldableIds[0]), null);
    assertEquals(await prediction(db, a[2].moldableIds[0]), null);
  },
);
