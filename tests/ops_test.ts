/**
 * The shared state-changing operations (lib/job/events.ts, jobs.ts, frag.ts, resources.ts) on a
 * real PostgreSQL database, one database per test.
 */
import { assertEquals, assertOk, assertRejects } from "./support/assert.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { connectUrl, type Sql } from "../lib/db/client.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import {
  addEvent,
  checkEvent,
  EVENT_DESCRIPTION_MAX,
  eventExists,
  eventHostnames,
  jobEvents,
  toCheckEvents,
} from "../lib/job/events.ts";
import {
  getJob,
  getJobTypes,
  jobCurrentHosts,
  jobHostsForLog,
  setFinishDate,
  setJobExitCode,
  setJobMessage,
  setJobState,
  setRunningDate,
  suspendedDuration,
} from "../lib/job/jobs.ts";
import {
  fragDate,
  fragJob,
  fragState,
  jobsToExterminate,
  jobsToKill,
  setFragState,
  timerArmedJobs,
} from "../lib/job/frag.ts";
import {
  addResource,
  getResource,
  resourcesToChange,
  setNodeNextState,
  setNodeState,
  setResourceNextState,
  setResourceState,
  STATE_NUM,
} from "../lib/resource/resources.ts";

/** Runs `fn` on a fresh database, dropped afterwards whatever happens. */
function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(name, async () => {
    const db = await createTestDb();
    try {
      await fn(db);
    } finally {
      await db.drop();
    }
  });
}

/** A second pool with enough connections for truly concurrent transactions. */
async function withPool<T>(db: TestDb, fn: (pool: Sql) => Promise<T>): Promise<T> {
  const pool = connectUrl(db.url, { max: 20, applicationName: "ops_test" });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

interface StateLog {
  job_state: string;
  date_start: number;
  date_stop: number;
}

async function stateLogs(sql: Sql, jobId: number): Promise<StateLog[]> {
  return await sql<StateLog[]>`
    SELECT job_state, date_start, date_stop FROM job_state_logs
    WHERE job_id = ${jobId} ORDER BY job_state_log_id`;
}

interface ResourceLog {
  resource_id: number;
  value: string;
  date_stop: number;
  finaud_decision: string;
}

async function resourceLogs(sql: Sql, ids: number[]): Promise<ResourceLog[]> {
  const rows = await sql<ResourceLog[]>`
    SELECT resource_id, value, date_stop, finaud_decision FROM resource_logs
    WHERE resource_id = ANY(${ids}::int[]) AND attribute = 'state'
    ORDER BY resource_log_id`;
  return rows.map((r) => ({ ...r, resource_id: Number(r.resource_id) }));
}

/** Strings a user controls (job name, command, description...), hostile on purpose. */
const HOSTILE = `it's "quoted"; DROP TABLE jobs; -- $(touch /tmp/pwned) \`id\`\nsecond line\t\\`;

// ---------------------------------------------------------------------------------------------
// jobs

dbTest("setJobState: each transition closes the open log row and opens exactly one", async (db) => {
  const n = new RecordingNotifier();
  const { jobId } = await insertJob(db.sql);
  for (const s of ["toLaunch", "Launching", "Running"] as const) {
    assertEquals(await setJobState(db.sql, n, jobId, s), true, s);
  }
  assertEquals((await getJob(db.sql, jobId))?.state, "Running");
  const logs = await stateLogs(db.sql, jobId);
  assertEquals(logs.map((l) => l.job_state), ["Waiting", "toLaunch", "Launching", "Running"]);
  assertEquals(logs.filter((l) => l.date_stop === 0).map((l) => l.job_state), ["Running"]);
  for (let i = 0; i + 1 < logs.length; i++) {
    // Each row is closed when the next one opens.
    assertEquals(logs[i].date_stop, logs[i + 1].date_start);
    assertOk(logs[i].date_start <= logs[i].date_stop);
  }
  // A no-op is refused and writes nothing.
  assertEquals(await setJobState(db.sql, n, jobId, "Running"), false);
  assertEquals((await stateLogs(db.sql, jobId)).length, 4);
  // Only final states wake almighty.
  assertEquals(n.almightyCommands, []);
  assertEquals(await setJobState(db.sql, n, 999999, "Running"), false);
});

dbTest(
  "setJobState: Terminated is final, sends ChState, fixes stop_time, logs the job",
  async (db) => {
    const n = new RecordingNotifier();
    const rids = await insertResources(db.sql, ["n1", "n2"], 2);
    const [{ now }] = await db.sql<{ now: number }[]>`
    SELECT EXTRACT(EPOCH FROM now())::int AS now`;
    // A start time ahead of the (zero) stop time: stop_time must become start_time.
    const { jobId, moldableId } = await insertJob(db.sql, {
      state: "Running",
      resources: rids.slice(0, 3),
      types: ["besteffort"],
      startTime: now + 1000,
    });
    const [{ res_group_id }] = await db.sql<{ res_group_id: number }[]>`
    INSERT INTO job_resource_groups (res_group_moldable_id, res_group_property)
    VALUES (${moldableId}, 'type = ''default''') RETURNING res_group_id`;
    await db.sql`
    INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
      res_job_value, res_job_order)
    VALUES (${res_group_id}, 'resource_id', 3, 0)`;
    await db.sql`INSERT INTO job_dependencies (job_id, job_id_required) VALUES (${jobId}, 1)`;

    assertEquals(await setJobState(db.sql, n, jobId, "Finishing"), true);
    assertEquals(n.almightyCommands, []);
    assertEquals(await setJobState(db.sql, n, jobId, "Terminated"), true);
    assertEquals(n.almightyCommands, ["ChState"]);

    const job = await getJob(db.sql, jobId);
    assertEquals(job?.state, "Terminated");
    assertEquals(job?.stop_time, now + 1000);
    const lastJobDates = await db.sql<{ resource_id: number; last_job_date: number }[]>`
    SELECT resource_id, last_job_date FROM resources ORDER BY resource_id`;
    for (const r of lastJobDates) {
      const assigned = rids.slice(0, 3).includes(Number(r.resource_id));
      assertEquals(r.last_job_date >= now, assigned, `resource ${r.resource_id}`);
    }
    const [idx] = await db.sql`
    SELECT
      (SELECT array_agg(DISTINCT moldable_index) FROM moldable_job_descriptions
        WHERE moldable_job_id = ${jobId}) AS moldables,
      (SELECT array_agg(DISTINCT res_group_index) FROM job_resource_groups
        WHERE res_group_moldable_id = ${moldableId}) AS groups,
      (SELECT array_agg(DISTINCT res_job_index) FROM job_resource_descriptions
        WHERE res_job_group_id = ${res_group_id}) AS descriptions,
      (SELECT array_agg(DISTINCT types_index) FROM job_types WHERE job_id = ${jobId}) AS types,
      (SELECT array_agg(DISTINCT job_dependency_index) FROM job_dependencies
        WHERE job_id = ${jobId}) AS deps,
      (SELECT array_agg(DISTINCT assigned_resource_index::text) FROM assigned_resources
        WHERE moldable_job_id = ${moldableId}) AS assigned`;
    assertEquals(
      { ...idx },
      {
        moldables: ["LOG"],
        groups: ["LOG"],
        descriptions: ["LOG"],
        types: ["LOG"],
        deps: ["LOG"],
        assigned: ["LOG"],
      },
    );

    // Final: nothing leaves Terminated, not even to Error, and nothing is written.
    const before = await stateLogs(db.sql, jobId);
    for (const s of ["Running", "Error", "Terminated", "Waiting"] as const) {
      assertEquals(await setJobState(db.sql, n, jobId, s, { message: "late" }), false, s);
    }
    assertEquals((await getJob(db.sql, jobId))?.state, "Terminated");
    assertEquals((await getJob(db.sql, jobId))?.message, "");
    assertEquals(await stateLogs(db.sql, jobId), before);
    assertEquals(before.filter((l) => l.date_stop === 0).map((l) => l.job_state), ["Terminated"]);
    assertEquals(n.almightyCommands, ["ChState"]);
  },
);

dbTest(
  "setJobState: Error of a suspended job clears suspended_jobs where no Suspended job is",
  async (db) => {
    const n = new RecordingNotifier();
    const [r1, r2, r3, r4] = await insertResources(db.sql, ["a", "b", "c", "d"], 1);
    const a = await insertJob(db.sql, { state: "Suspended", suspended: true, resources: [r1, r2] });
    await insertJob(db.sql, { state: "Suspended", suspended: true, resources: [r3] });
    await db.sql`UPDATE resources SET suspended_jobs = 'YES'`;
    assertEquals(await setJobState(db.sql, n, a.jobId, "Error", { message: HOSTILE }), true);
    const rows = await db.sql<{ resource_id: number; suspended_jobs: string }[]>`
    SELECT resource_id, suspended_jobs FROM resources ORDER BY resource_id`;
    assertEquals(
      rows.map((r) => [Number(r.resource_id), r.suspended_jobs]),
      [[r1, "NO"], [r2, "NO"], [r3, "YES"], [r4, "NO"]],
    );
    assertEquals((await getJob(db.sql, a.jobId))?.message, HOSTILE);
    assertEquals(n.almightyCommands, ["ChState"]);
  },
);

dbTest(
  "setJobState composes: inside a caller's transaction that rolls back, nothing stays",
  async (db) => {
    const n = new RecordingNotifier();
    const { jobId } = await insertJob(db.sql, { state: "Running" });
    await assertRejects(() =>
      db.sql.begin(async (tx) => {
        assertEquals(await setJobState(tx, n, jobId, "Error"), true);
        throw new Error("caller gives up");
      })
    );
    assertEquals((await getJob(db.sql, jobId))?.state, "Running");
    assertEquals((await stateLogs(db.sql, jobId)).length, 1);
  },
);

dbTest("concurrency: 20 concurrent setJobState(Running→Error) change the job once", async (db) => {
  const n = new RecordingNotifier();
  const rids = await insertResources(db.sql, ["n1"], 2);
  const { jobId } = await insertJob(db.sql, { state: "Running", resources: rids });
  const results = await withPool(
    db,
    (pool) => Promise.all(Array.from({ length: 20 }, () => setJobState(pool, n, jobId, "Error"))),
  );
  assertEquals(results.filter((r) => r).length, 1);
  const logs = await stateLogs(db.sql, jobId);
  assertEquals(logs.filter((l) => l.job_state === "Error").length, 1);
  assertEquals(logs.filter((l) => l.date_stop === 0).length, 1);
  assertEquals(n.almightyCommands, ["ChState"]);
});

dbTest(
  "concurrency: racing different target states keep one open, well-ordered log",
  async (db) => {
    const n = new RecordingNotifier();
    const { jobId } = await insertJob(db.sql, { state: "Running" });
    const targets = ["Suspended", "Resuming", "Running", "Finishing"] as const;
    await withPool(db, (pool) =>
      Promise.all(
        Array.from({ length: 24 }, (_, i) => setJobState(pool, n, jobId, targets[i % 4])),
      ));
    const logs = await stateLogs(db.sql, jobId);
    assertEquals(logs.filter((l) => l.date_stop === 0).length, 1);
    assertEquals(logs[logs.length - 1].job_state, (await getJob(db.sql, jobId))?.state);
    for (let i = 0; i + 1 < logs.length; i++) {
      assertOk(logs[i].date_stop >= logs[i].date_start, `row ${i} closed before it opened`);
      assertEquals(logs[i].date_stop, logs[i + 1].date_start);
      assertOk(logs[i].job_state !== logs[i + 1].job_state, "a no-op was logged");
    }
  },
);

dbTest("job reads: hosts sorted byte-wise, types through the one parser, log hosts", async (db) => {
  const n = new RecordingNotifier();
  const rids = await insertResources(db.sql, ["node-b", "node-a", "node-10", "node-9"], 2);
  const other = await addResource(db.sql, { network_address: "licence-srv", type: "licence" });
  const blank = await addResource(db.sql, { network_address: "" });
  const { jobId } = await insertJob(db.sql, {
    state: "Running",
    resources: [...rids, other, blank],
    types: ["besteffort", "timesharing=user,*", "token:LIC=2", "container=x"],
  });
  const hosts = ["node-10", "node-9", "node-a", "node-b"];
  assertEquals(await jobCurrentHosts(db.sql, jobId), hosts);
  assertEquals(await jobHostsForLog(db.sql, jobId), hosts);
  assertEquals(await getJobTypes(db.sql, jobId), {
    besteffort: true,
    timesharing: "user,*",
    token: { LIC: 2 },
    container: "x",
  });
  assertEquals(await setJobState(db.sql, n, jobId, "Terminated"), true);
  // Logged: no CURRENT hosts or types left, but the log still knows where the job ran.
  assertEquals(await jobCurrentHosts(db.sql, jobId), []);
  assertEquals(await jobHostsForLog(db.sql, jobId), hosts);
  assertEquals(await getJobTypes(db.sql, jobId), {});
  assertEquals(await jobCurrentHosts(db.sql, 424242), []);
});

dbTest("job columns: message, exit code, running and finish dates", async (db) => {
  const { jobId } = await insertJob(db.sql, { state: "Launching", startTime: 0 });
  const long = HOSTILE + "é".repeat(300);
  assertEquals(await setJobMessage(db.sql, jobId, long), true);
  const msg = (await getJob(db.sql, jobId))?.message ?? "";
  assertEquals(Array.from(msg).length, 255);
  assertEquals(msg, Array.from(long).slice(0, 255).join(""));
  assertEquals(await setJobExitCode(db.sql, jobId, 99 << 8), true);
  assertEquals((await getJob(db.sql, jobId))?.exit_code, 25344);
  assertEquals(await setJobExitCode(db.sql, jobId, null), true);
  assertEquals((await getJob(db.sql, jobId))?.exit_code, null);

  const started = await setRunningDate(db.sql, jobId);
  assertOk(started !== null && started > 0);
  assertEquals((await getJob(db.sql, jobId))?.start_time, started);
  const stopped = await setFinishDate(db.sql, jobId);
  assertOk(stopped !== null && stopped >= started);
  // stop_time never precedes start_time.
  await db.sql`UPDATE jobs SET start_time = start_time + 5000 WHERE job_id = ${jobId}`;
  assertEquals(await setFinishDate(db.sql, jobId), started + 5000);
  assertEquals(await setFinishDate(db.sql, 424242), null);
  assertEquals(await setJobMessage(db.sql, 424242, "x"), false);
});

dbTest(
  "suspendedDuration: closed Suspended/Resuming rows, plus the open one until now",
  async (db) => {
    const { jobId } = await insertJob(db.sql, { state: "Suspended" });
    await db.sql`DELETE FROM job_state_logs WHERE job_id = ${jobId}`;
    await db.sql`
    INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop) VALUES
      (${jobId}, 'Running', 1000, 1100),
      (${jobId}, 'Suspended', 1100, 1150),
      (${jobId}, 'Resuming', 1150, 1160),
      (${jobId}, 'Running', 1160, 1200),
      (${jobId}, 'Suspended', 1200, 0)`;
    assertEquals(await suspendedDuration(db.sql, jobId, 1230), 50 + 10 + 30);
    await db.sql`UPDATE job_state_logs SET date_stop = 1210 WHERE date_stop = 0`;
    assertEquals(await suspendedDuration(db.sql, jobId, 5000), 50 + 10 + 10);
    assertEquals(await suspendedDuration(db.sql, 424242, 5000), 0);
  },
);

// ---------------------------------------------------------------------------------------------
// events

dbTest("addEvent: hosts, truncated description, user strings stored verbatim", async (db) => {
  const desc300 = HOSTILE + "x".repeat(300 - HOSTILE.length);
  assertEquals(desc300.length, 300);
  const id = await addEvent(db.sql, {
    type: "PING_CHECKER_NODE_SUSPECTED",
    jobId: 7,
    description: desc300,
    hosts: ["node-b", "node-a", "node-b", "", "it's-$(x)"],
  });
  const id2 = await addEvent(db.sql, {
    type: "PING_CHECKER_NODE_SUSPECTED",
    jobId: 7,
    description: "again\0with NUL",
  });
  const id3 = await addEvent(db.sql, {
    type: "LOG_SUSPECTED",
    jobId: 0,
    description: "🙂".repeat(300),
  });
  const events = await toCheckEvents(db.sql);
  assertEquals(events.map((e) => e.event_id), [id, id2, id3]);
  assertEquals(events[0].description, desc300.slice(0, EVENT_DESCRIPTION_MAX));
  assertEquals(events[0].hostnames, ["it's-$(x)", "node-a", "node-b"]);
  assertEquals(events[0].to_check, "YES");
  assertOk(events[0].date > 0);
  assertEquals(events[1].description, "againwith NUL");
  assertEquals(events[1].hostnames, []);
  // Characters, not UTF-16 units: 255 whole emoji.
  assertEquals(events[2].description, "🙂".repeat(255));
  assertEquals(await eventHostnames(db.sql, id), ["it's-$(x)", "node-a", "node-b"]);
  assertEquals(await eventHostnames(db.sql, id2), []);

  assertEquals(await eventExists(db.sql, 7, "PING_CHECKER_NODE_SUSPECTED"), true);
  assertEquals(await eventExists(db.sql, 7, "CPUSET_ERROR"), false);
  assertEquals(await eventExists(db.sql, 8, "PING_CHECKER_NODE_SUSPECTED"), false);

  // check_event marks every unchecked event of that (type, job), and only those.
  assertEquals(await checkEvent(db.sql, "PING_CHECKER_NODE_SUSPECTED", 7), 2);
  assertEquals(await checkEvent(db.sql, "PING_CHECKER_NODE_SUSPECTED", 7), 0);
  assertEquals((await toCheckEvents(db.sql)).map((e) => e.event_id), [id3]);
  assertEquals((await jobEvents(db.sql, 7)).map((e) => e.to_check), ["NO", "NO"]);
  // The SQL in the description was data, not SQL.
  const [{ jobs }] = await db.sql`SELECT count(*)::int AS jobs FROM jobs`;
  assertEquals(jobs, 0);
});

// ---------------------------------------------------------------------------------------------
// frag

dbTest("fragJob: -3 missing, -1 not allowed, 0 recorded with its event, -2 already", async (db) => {
  const { jobId } = await insertJob(db.sql, { user: "o'neil" });
  const other = await insertJob(db.sql, { user: "bob" });
  assertEquals(await fragJob(db.sql, 424242, "root"), -3);
  assertEquals(await fragJob(db.sql, jobId, "mallory"), -1);
  assertEquals(await fragJob(db.sql, jobId, HOSTILE), -1);
  assertEquals(await fragState(db.sql, jobId), null);
  assertEquals(await fragJob(db.sql, jobId, "o'neil"), 0);
  assertEquals(await fragJob(db.sql, jobId, "o'neil"), -2);
  assertEquals(await fragJob(db.sql, jobId, "root"), -2);
  assertEquals(await fragJob(db.sql, other.jobId, "oar"), 0);

  assertEquals(await fragState(db.sql, jobId), "LEON");
  const events = await jobEvents(db.sql, jobId, "FRAG_JOB_REQUEST");
  assertEquals(events.map((e) => e.description), [
    `User o'neil requested to frag the job ${jobId}`,
  ]);
  assertEquals(events[0].date, await fragDate(db.sql, jobId));
  assertEquals(
    (await jobEvents(db.sql, other.jobId)).map((e) => e.description),
    [`User oar requested to frag the job ${other.jobId}`],
  );
});

dbTest("concurrency: 20 concurrent fragJob on one job, exactly one succeeds", async (db) => {
  const { jobId } = await insertJob(db.sql, { state: "Running" });
  const results = await withPool(db, (pool) =>
    Promise.all(
      Array.from({ length: 20 }, (_, i) => fragJob(pool, jobId, i % 2 ? "alice" : "root")),
    ));
  assertEquals(results.filter((r) => r === 0).length, 1);
  assertEquals(results.filter((r) => r === -2).length, 19);
  assertEquals((await jobEvents(db.sql, jobId, "FRAG_JOB_REQUEST")).length, 1);
  const [{ rows }] = await db.sql`SELECT count(*)::int AS rows FROM frag_jobs`;
  assertEquals(rows, 1);
});

dbTest("frag lifecycle reads and compare-and-set transitions", async (db) => {
  const running = await insertJob(db.sql, { state: "Running" });
  const finishing = await insertJob(db.sql, { state: "Finishing" });
  const waiting = await insertJob(db.sql, { state: "Waiting" });
  for (const j of [running, finishing, waiting]) {
    assertEquals(await fragJob(db.sql, j.jobId, "oar"), 0);
  }
  const ids = (jobs: { job_id: number }[]) => jobs.map((j) => j.job_id);
  assertEquals(ids(await jobsToKill(db.sql)), [running.jobId, waiting.jobId]);

  assertEquals(await setFragState(db.sql, running.jobId, "TIMER_ARMED", "LEON"), true);
  // A second Leon pass that still believes the row is LEON loses.
  assertEquals(await setFragState(db.sql, running.jobId, "TIMER_ARMED", "LEON"), false);
  assertEquals(ids(await jobsToKill(db.sql)), [waiting.jobId]);
  const armed = await timerArmedJobs(db.sql);
  assertEquals(ids(armed), [running.jobId]);
  assertEquals(armed[0].frag_date, await fragDate(db.sql, running.jobId));
  assertEquals(armed[0].state, "Running");

  assertEquals(
    await setFragState(db.sql, running.jobId, "LEON_EXTERMINATE", ["TIMER_ARMED", "LEON"]),
    true,
  );
  assertEquals(ids(await jobsToExterminate(db.sql)), [running.jobId]);
  assertEquals(ids(await timerArmedJobs(db.sql)), []);
  assertEquals(await setFragState(db.sql, waiting.jobId, "FRAGGED"), true);
  assertEquals(await fragState(db.sql, waiting.jobId), "FRAGGED");
  assertEquals(await setFragState(db.sql, 424242, "FRAGGED"), false);
});

// ---------------------------------------------------------------------------------------------
// resources

dbTest("setNodeState: all 4 resources of the host and their logs in one go", async (db) => {
  const rids = await insertResources(db.sql, ["node1", "node2"], 4);
  const node1 = rids.slice(0, 4);
  const changed = await setNodeState(db.sql, "node1", "Dead", "NO");
  assertEquals(changed, node1);
  for (const rid of rids) {
    const r = await getResource(db.sql, rid);
    const dead = node1.includes(rid);
    assertEquals([r?.state, r?.state_num], dead ? ["Dead", STATE_NUM.Dead] : ["Alive", 1]);
  }
  const logs = await resourceLogs(db.sql, node1);
  assertEquals(logs.length, 8);
  assertEquals(logs.filter((l) => l.date_stop === 0).map((l) => [l.resource_id, l.value]), [
    ...node1.map((rid) => [rid, "Dead"]),
  ]);
  assertEquals(logs.filter((l) => l.date_stop !== 0).map((l) => l.value), Array(4).fill("Alive"));
  // Already Dead: nothing to change, nothing logged.
  assertEquals(await setNodeState(db.sql, "node1", "Dead", "NO"), []);
  assertEquals((await resourceLogs(db.sql, node1)).length, 8);
  assertEquals(await setNodeState(db.sql, "no-such-host", "Dead", "NO"), []);
});

dbTest(
  "setNodeState(Suspected) spares Dead and Absent resources (docs/differences.md §3)",
  async (db) => {
    const [alive, dead, absent, byFinaud, byEvent] = await insertResources(db.sql, ["h'1"], 5);
    await setResourceState(db.sql, dead, "Dead", "NO");
    await setResourceState(db.sql, absent, "Absent", "NO");
    await setResourceState(db.sql, byFinaud, "Suspected", "YES");
    await setResourceState(db.sql, byEvent, "Suspected", "NO");

    assertEquals(await setNodeState(db.sql, "h'1", "Suspected", "NO"), [alive, byFinaud]);
    const states = async () =>
      (await db.sql<{ state: string; finaud_decision: string }[]>`
      SELECT state, finaud_decision FROM resources ORDER BY resource_id`)
        .map((r) => `${r.state}/${r.finaud_decision}`);
    assertEquals(await states(), [
      "Suspected/NO",
      "Dead/NO",
      "Absent/NO",
      "Suspected/NO",
      "Suspected/NO",
    ]);
    // Suspected by an event is not re-suspected (no duplicate log row).
    assertEquals(await setNodeState(db.sql, "h'1", "Suspected", "YES"), []);
    // Other transitions apply to every resource not already there.
    assertEquals(await setNodeState(db.sql, "h'1", "Alive", "NO"), [
      alive,
      dead,
      absent,
      byFinaud,
      byEvent,
    ]);
    const open = (await resourceLogs(db.sql, [alive, dead, absent, byFinaud, byEvent]))
      .filter((l) => l.date_stop === 0);
    assertEquals(open.map((l) => l.value), Array(5).fill("Alive"));
  },
);

dbTest(
  "concurrency: racing setNodeState leave one open log per resource, matching state",
  async (db) => {
    const rids = await insertResources(db.sql, ["racer"], 4);
    const plan = ["Suspected", "Alive", "Dead", "Alive", "Absent", "Suspected"] as const;
    await withPool(db, (pool) =>
      Promise.all(
        Array.from({ length: 18 }, (_, i) =>
          i % 3 === 2
            ? setResourceState(pool, rids[i % 4], plan[i % plan.length], "NO")
            : setNodeState(pool, "racer", plan[i % plan.length], i % 2 ? "YES" : "NO")),
      ));
    const open = (await resourceLogs(db.sql, rids)).filter((l) => l.date_stop === 0);
    assertEquals(open.map((l) => l.resource_id).sort((a, b) => a - b), rids);
    for (const l of open) {
      const r = await getResource(db.sql, l.resource_id);
      assertEquals([l.value, l.finaud_decision], [r?.state, r?.finaud_decision]);
      assertEquals(r?.state_num, STATE_NUM[r!.state]);
    }
  },
);

dbTest("setResourceState, next states and addResource", async (db) => {
  const rid = await addResource(db.sql, {
    network_address: "node-x",
    properties: { cpuset: "3", besteffort: "NO" },
  });
  const r = await getResource(db.sql, rid);
  assertEquals([r?.state, r?.state_num, r?.cpuset, r?.besteffort, r?.type], [
    "Alive",
    1,
    "3",
    "NO",
    "default",
  ]);
  assertEquals((await resourceLogs(db.sql, [rid])).map((l) => [l.value, l.date_stop]), [[
    "Alive",
    0,
  ]]);
  const absent = await addResource(db.sql, { network_address: "node-y", state: "Absent" });
  assertEquals((await getResource(db.sql, absent))?.state_num, STATE_NUM.Absent);
  await assertRejects(() =>
    addResource(db.sql, { network_address: "z", properties: { "cpu; DROP TABLE jobs": 1 } })
  );

  assertEquals(await setResourceState(db.sql, rid, "Suspected", "YES"), true);
  assertEquals(await setResourceState(db.sql, rid, "Suspected", "YES"), false);
  assertEquals(await setResourceState(db.sql, 424242, "Dead", "NO"), false);
  const after = await getResource(db.sql, rid);
  assertEquals([after?.state, after?.finaud_decision, after?.state_num], ["Suspected", "YES", 3]);
  assertEquals((await resourceLogs(db.sql, [rid])).map((l) => [l.value, l.finaud_decision]), [
    ["Alive", "NO"],
    ["Suspected", "YES"],
  ]);

  assertEquals(await resourcesToChange(db.sql), []);
  assertEquals(await setNodeNextState(db.sql, "node-x", "Alive", "YES"), 1);
  assertEquals(await setResourceNextState(db.sql, absent, "Dead"), true);
  assertEquals(await setResourceNextState(db.sql, 424242, "Dead"), false);
  assertEquals(await resourcesToChange(db.sql), [
    {
      resource_id: rid,
      network_address: "node-x",
      state: "Suspected",
      next_state: "Alive",
      next_finaud_decision: "YES",
    },
    {
      resource_id: absent,
      network_address: "node-y",
      state: "Absent",
      next_state: "Dead",
      next_finaud_decision: "NO",
    },
  ]);
  assertEquals(await setNodeNextState(db.sql, "node-x", "UnChanged"), 1);
  assertEquals((await resourcesToChange(db.sql)).map((c) => c.resource_id), [absent]);
});
