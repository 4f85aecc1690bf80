/**
 * NodeChangeState in-process against a real database: every case of OAR 3's
 * test_node_change_state.py, and our fixes (docs/differences.md §3, §7, §15; user issues #148,
 * #149), resubmission, the healing script and notifications to interactive oarsub over real
 * sockets.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources, type JobFixture } from "./support/fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { addEvent, jobEvents } from "../lib/job/events.ts";
import { fragState } from "../lib/job/frag.ts";
import { getJob } from "../lib/job/jobs.ts";
import type { JobState } from "../lib/job/states.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { runNodeChangeState } from "../modules/node_change_state/node_change_state.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { RecordingSignaller } from "./support/signaller.ts";
import { getResource } from "../lib/resource/resources.ts";
import { resubmitJob } from "../lib/job/resubmit.ts";

interface Run {
  code: number;
  notifier: RecordingNotifier;
  signaller: RecordingSignaller;
}

async function ncs(
  db: TestDb,
  extra: Record<string, string | number> = {},
  signaller = new RecordingSignaller(),
): Promise<Run> {
  const notifier = new RecordingNotifier();
  const code = await runNodeChangeState({
    sql: db.sql,
    config: db.config.with(extra),
    log: moduleLogger("node_change_state"),
    notifier,
    signaller,
  });
  return { code, notifier, signaller };
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(`node_change_state: ${name}`, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

async function state(db: TestDb, jobId: number): Promise<JobState | undefined> {
  return (await getJob(db.sql, jobId))?.state;
}

/** base_test_node_change: a job, one event for it, a run. */
async function jobWithEvent(
  db: TestDb,
  type: string,
  job: JobFixture = {},
  hosts: string[] = [],
): Promise<number> {
  const { jobId } = await insertJob(db.sql, job);
  await addEvent(db.sql, { type, jobId, description: `[test] ${type}`, hosts });
  return jobId;
}

async function resubmissionsOf(db: TestDb, jobId: number) {
  return [
    ...await db.sql<{ job_id: number; state: string; job_name: string | null }[]>`
      SELECT job_id, state, job_name FROM jobs WHERE resubmit_job_id = ${jobId}`,
  ];
}

dbTest("void: no events, exit 0", async (db) => {
  assertEquals((await ncs(db)).code, 0);
});

dbTest("EXTERMINATE_JOB on a Waiting job without resources: Error, exit 0", async (db) => {
  const id = await jobWithEvent(db, "EXTERMINATE_JOB");
  const run = await ncs(db);
  assertEquals([run.code, await state(db, id)], [0, "Error"]);
  // It is resubmitted: the event saying so is left to check, so the next run is asked for.
  assertOk(run.notifier.almightyCommands.includes("ChState"));
  // Handled: marked checked.
  const [ev] = await jobEvents(db.sql, id, "EXTERMINATE_JOB");
  assertEquals(ev.to_check, "NO");
});

dbTest(
  "jobs ended with nothing left to check: no ChState (it would ask for a useless run)",
  async (db) => {
    const a = await jobWithEvent(db, "SWITCH_INTO_TERMINATE_STATE", { state: "Finishing" });
    const b = await jobWithEvent(db, "SWITCH_INTO_TERMINATE_STATE", { state: "Finishing" });
    const run = await ncs(db);
    assertEquals([await state(db, a), await state(db, b)], ["Terminated", "Terminated"]);
    assertEquals(run.notifier.almightyCommands, []);
  },
);

dbTest("idempotent job exiting 99 after 90 s: Terminated and resubmitted once", async (db) => {
  const id = await jobWithEvent(db, "SWITCH_INTO_TERMINATE_STATE", {
    state: "Finishing",
    types: ["idempotent", "timesharing=*,*"],
    startTime: 1000,
    name: `it's "quoted" $(x)`,
  });
  await db.sql`UPDATE jobs SET exit_code = 25344, stop_time = 1090 WHERE job_id = ${id}`;
  const run = await ncs(db);
  assertEquals(await state(db, id), "Terminated");
  const copies = await resubmissionsOf(db, id);
  assertEquals(copies.map((c) => [c.state, c.job_name]), [["Waiting", `it's "quoted" $(x)`]]);
  assertOk(run.notifier.almightyCommands.includes("Qsub"));
  // The event seen again (a crash before it was marked) resubmits nothing more.
  await addEvent(db.sql, { type: "SWITCH_INTO_TERMINATE_STATE", jobId: id, description: "x" });
  await ncs(db);
  assertEquals((await resubmissionsOf(db, id)).length, 1);
});

dbTest("idempotent job exiting 99 after only 60 s is not resubmitted", async (db) => {
  const id = await jobWithEvent(db, "SWITCH_INTO_TERMINATE_STATE", {
    state: "Finishing",
    types: ["idempotent"],
    startTime: 1000,
  });
  await db.sql`UPDATE jobs SET exit_code = 25344, stop_time = 1060 WHERE job_id = ${id}`;
  await ncs(db);
  assertEquals([await state(db, id), (await resubmissionsOf(db, id)).length], ["Terminated", 0]);
});

dbTest("SWITCH_INTO_ERROR_STATE: Error", async (db) => {
  const id = await jobWithEvent(db, "SWITCH_INTO_ERROR_STATE", { state: "Finishing" });
  await ncs(db);
  assertEquals(await state(db, id), "Error");
});

dbTest("EPILOGUE_ERROR on a job without resources: Terminated", async (db) => {
  const id = await jobWithEvent(db, "EPILOGUE_ERROR", { state: "Finishing" });
  await ncs(db);
  assertEquals(await state(db, id), "Terminated");
});

dbTest("FRAG_JOB_REQUEST: the job is unchanged", async (db) => {
  const id = await jobWithEvent(db, "FRAG_JOB_REQUEST");
  assertEquals((await ncs(db)).code, 0);
  assertEquals(await state(db, id), "Waiting");
});

dbTest("PING_CHECKER_NODE_SUSPECTED, no hosts: Error and resubmitted", async (db) => {
  const id = await jobWithEvent(db, "PING_CHECKER_NODE_SUSPECTED", { state: "Launching" });
  const run = await ncs(db);
  assertEquals([run.code, await state(db, id)], [0, "Error"]);
  assertEquals((await resubmissionsOf(db, id)).length, 1);
  assertEquals((await jobEvents(db.sql, id, "RESUBMIT_JOB_AUTOMATICALLY")).length, 1);
});

dbTest(
  "PROLOGUE_ERROR on a Scheduled reservation: Error, all its nodes Suspected, exit 1",
  async (db) => {
    const rs = await insertResources(db.sql, ["localhost0", "localhost1"], 2);
    const id = await jobWithEvent(db, "PROLOGUE_ERROR", { state: "Launching", resources: rs });
    await db.sql`UPDATE jobs SET reservation = 'Scheduled' WHERE job_id = ${id}`;
    const run = await ncs(db);
    assertEquals([run.code, await state(db, id)], [1, "Error"]);
    for (const rid of rs) {
      const r = await getResource(db.sql, rid);
      assertEquals([r?.state, r?.finaud_decision], ["Suspected", "NO"]);
    }
    const [log] = await jobEvents(db.sql, 0, "LOG_SUSPECTED");
    assertEquals([log.hostnames, log.description], [
      ["localhost0", "localhost1"],
      "[test] PROLOGUE_ERROR",
    ]);
    // Reservations are not resubmitted.
    assertEquals((await resubmissionsOf(db, id)).length, 0);
  },
);

dbTest("a reservation keeps running after a ping failure on some of its nodes", async (db) => {
  const rs = await insertResources(db.sql, ["localhost0", "localhost1"], 1);
  const id = await jobWithEvent(db, "PING_CHECKER_NODE_SUSPECTED", {
    state: "Running",
    resources: rs,
  }, ["localhost1"]);
  await db.sql`UPDATE jobs SET reservation = 'Scheduled' WHERE job_id = ${id}`;
  const run = await ncs(db);
  assertEquals([run.code, await state(db, id)], [1, "Running"]);
  const r1 = await getResource(db.sql, rs[1]);
  assertEquals([r1?.state, r1?.finaud_decision], ["Suspected", "YES"]);
  assertEquals((await getResource(db.sql, rs[0]))?.state, "Alive");
});

dbTest("SERVER_PROLOGUE_TIMEOUT: Error, all queues stopped, resubmitted", async (db) => {
  await db.sql`
    INSERT INTO queues (queue_name, priority, scheduler_policy, state)
    VALUES ('default', 3, 'kamelot', 'Active'), ('besteffort', 0, 'kamelot', 'Active')
    ON CONFLICT (queue_name) DO UPDATE SET state = 'Active'`;
  const id = await jobWithEvent(db, "SERVER_PROLOGUE_TIMEOUT", { state: "Launching" });
  await ncs(db);
  assertEquals(await state(db, id), "Error");
  assertEquals((await jobEvents(db.sql, id, "RESUBMIT_JOB_AUTOMATICALLY")).length, 1);
  const queues = await db.sql<{ state: string }[]>`SELECT DISTINCT state FROM queues`;
  assertEquals(queues.map((q) => q.state), ["notActive"]);
});

dbTest("automatic resubmission at most once per job, never of its copy (#149)", async (db) => {
  const [r] = await insertResources(db.sql, ["n1"], 1);
  const id = await jobWithEvent(db, "LAUNCHING_OAREXEC_TIMEOUT", {
    state: "Launching",
    resources: [r],
  });
  // The same failure reported twice, then seen again in a later run.
  await addEvent(db.sql, { type: "PROLOGUE_ERROR", jobId: id, description: "again" });
  await ncs(db);
  await addEvent(db.sql, { type: "USER_SHELL", jobId: id, description: "again" });
  await ncs(db);
  const copies = await resubmissionsOf(db, id);
  assertEquals(copies.length, 1);
  // The copy fails the same way: it is not resubmitted again.
  const copy = copies[0].job_id;
  await db.sql`UPDATE jobs SET state = 'Launching' WHERE job_id = ${copy}`;
  await addEvent(db.sql, { type: "LAUNCHING_OAREXEC_TIMEOUT", jobId: copy, description: "x" });
  await ncs(db);
  assertEquals(await state(db, copy), "Error");
  assertEquals((await resubmissionsOf(db, copy)).length, 0);
});

dbTest("suspend: HOLD_RUNNING_JOB stops the job's processes, Suspended (§7)", async (db) => {
  const rs = await insertResources(db.sql, ["node-b", "node-a"], 1);
  const id = await jobWithEvent(db, "HOLD_RUNNING_JOB", { state: "Running", resources: rs });
  const run = await ncs(db);
  assertEquals([run.code, await state(db, id)], [0, "Suspended"]);
  assertEquals(run.signaller.calls, [["node-a", id, "STOP"]]);
  assertEquals((await getJob(db.sql, id))?.suspended, "YES");
  for (const rid of rs) assertEquals((await getResource(db.sql, rid))?.suspended_jobs, "YES");
  assertOk(run.notifier.almightyCommands.includes("Term"));
});

dbTest("HOLD_WAITING_JOB no longer suspends a Running job (§7)", async (db) => {
  const id = await jobWithEvent(db, "HOLD_WAITING_JOB", { state: "Running" });
  const run = await ncs(db);
  assertEquals([await state(db, id), run.signaller.calls], ["Running", []]);
});

dbTest("suspend: a noop job has no process to stop", async (db) => {
  const id = await jobWithEvent(db, "HOLD_RUNNING_JOB", { state: "Running", types: ["noop"] });
  const run = await ncs(db);
  assertEquals([await state(db, id), run.signaller.calls], ["Suspended", []]);
});

dbTest("suspend: the after-suspend script fails: Resuming, SUSPEND_SCRIPT_ERROR", async (db) => {
  const dir = await Deno.makeTempDir({ prefix: "oar-ncs-" });
  db.addTempDir(dir);
  const script = `${dir}/after_suspend`;
  await Deno.writeTextFile(script, `#!/bin/sh\necho "$1" > ${dir}/arg\necho oops >&2\nexit 3\n`);
  await Deno.chmod(script, 0o755);
  const id = await jobWithEvent(db, "HOLD_RUNNING_JOB", { state: "Running" });
  const run = await ncs(db, { JUST_AFTER_SUSPEND_EXEC_FILE: script });
  assertEquals(await state(db, id), "Resuming");
  assertEquals((await jobEvents(db.sql, id, "SUSPEND_SCRIPT_ERROR")).length, 1);
  assertEquals(await Deno.readTextFile(`${dir}/arg`), `${id}\n`);
  assertOk(run.notifier.almightyCommands.includes("Qresume"));
});

dbTest("suspend: the after-suspend script succeeds: Suspended", async (db) => {
  const id = await jobWithEvent(db, "HOLD_RUNNING_JOB", { state: "Running" });
  await ncs(db, { JUST_AFTER_SUSPEND_EXEC_FILE: "/bin/true" });
  assertEquals(await state(db, id), "Suspended");
});

dbTest("suspend: oarexec cannot be reached: SUSPEND_ERROR, job fragged, exit 2", async (db) => {
  const [r] = await insertResources(db.sql, ["node-a"], 1);
  const id = await jobWithEvent(db, "HOLD_RUNNING_JOB", { state: "Running", resources: [r] });
  const run = await ncs(db, {}, new RecordingSignaller("ssh: timed out"));
  assertEquals([run.code, await state(db, id)], [2, "Running"]);
  const [ev] = await jobEvents(db.sql, id, "SUSPEND_ERROR");
  assertEquals(ev.hostnames, ["node-a"]);
  assertEquals(await fragState(db.sql, id), "LEON");
  // The next run suspects the node (tag NO).
  assertEquals((await ncs(db)).code, 1);
  assertEquals((await getResource(db.sql, r))?.state, "Suspected");
});

dbTest("HOLD_WAITING_JOB on a Waiting interactive job: Hold, oarsub told", async (db) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const received = (async () => {
    const conn = await listener.accept();
    let text = "";
    const dec = new TextDecoder();
    for await (const chunk of conn.readable) text += dec.decode(chunk);
    return text;
  })();
  try {
    const id = await jobWithEvent(db, "HOLD_WAITING_JOB");
    await db.sql`
      UPDATE jobs SET job_type = 'INTERACTIVE', info_type = ${`127.0.0.1:${port}`}
      WHERE job_id = ${id}`;
    await ncs(db);
    assertEquals(await state(db, id), "Hold");
    assertEquals(await received, "Start prediction: undefined (Hold)\n");
  } finally {
    listener.close();
  }
});

dbTest("hold of a Resuming job: Suspended, Term", async (db) => {
  const id = await jobWithEvent(db, "HOLD_WAITING_JOB", { state: "Resuming" });
  const run = await ncs(db);
  assertEquals(await state(db, id), "Suspended");
  assertOk(run.notifier.almightyCommands.includes("Term"));
});

dbTest("RESUME_JOB of a Suspended job: Resuming, Qresume", async (db) => {
  const id = await jobWithEvent(db, "RESUME_JOB", { state: "Suspended" });
  const run = await ncs(db);
  assertEquals(await state(db, id), "Resuming");
  assertEquals(run.notifier.almightyCommands, ["Qresume"]);
});

dbTest("RESUME_JOB of a held job: Waiting, Qresume", async (db) => {
  const id = await jobWithEvent(db, "RESUME_JOB", { state: "Hold" });
  const run = await ncs(db);
  assertEquals(await state(db, id), "Waiting");
  assertEquals(run.notifier.almightyCommands, ["Qresume"]);
});

dbTest("next_state Suspected plus a SWITCH_INTO_TERMINATE_STATE: exit 1", async (db) => {
  const [r] = await insertResources(db.sql, ["localhost0"], 1);
  await db.sql`UPDATE resources SET next_state = 'Suspected' WHERE resource_id = ${r}`;
  const id = await jobWithEvent(db, "SWITCH_INTO_TERMINATE_STATE", { state: "Finishing" });
  assertEquals((await ncs(db)).code, 1);
  assertEquals(await state(db, id), "Terminated");
  const res = await getResource(db.sql, r);
  assertEquals([res?.state, res?.next_state], ["Suspected", "UnChanged"]);
  const logs = await db.sql<{ value: string }[]>`
    SELECT value FROM resource_logs WHERE resource_id = ${r} AND date_stop = 0`;
  assertEquals(logs.map((l) => l.value), ["Suspected"]);
});

dbTest("next_state Dead on a node without jobs: exit 1", async (db) => {
  const [r] = await insertResources(db.sql, ["localhost0"], 1);
  await db.sql`UPDATE resources SET next_state = 'Dead' WHERE resource_id = ${r}`;
  assertEquals((await ncs(db)).code, 1);
  assertEquals((await getResource(db.sql, r))?.state, "Dead");
});

dbTest("next_state Dead under a Running job: the job is fragged, exit 2", async (db) => {
  const rs = await insertResources(db.sql, ["localhost0", "localhost1"], 2);
  const { jobId } = await insertJob(db.sql, { state: "Running", resources: rs });
  await db.sql`UPDATE resources SET next_state = 'Dead' WHERE network_address = 'localhost0'`;
  assertEquals((await ncs(db)).code, 2);
  assertEquals(await fragState(db.sql, jobId), "LEON");
});

dbTest("cosystem and noop jobs are not killed with their nodes", async (db) => {
  const rs = await insertResources(db.sql, ["localhost0", "localhost1", "localhost2"], 1);
  const cosystem = (await insertJob(db.sql, {
    state: "Running",
    resources: [rs[0]],
    types: ["cosystem"],
  })).jobId;
  const noop = (await insertJob(db.sql, { state: "Running", resources: [rs[1]], types: ["noop"] }))
    .jobId;
  const normal = (await insertJob(db.sql, { state: "Running", resources: [rs[2]] })).jobId;
  await db.sql`UPDATE resources SET next_state = 'Dead'`;
  assertEquals((await ncs(db)).code, 2);
  const frags = await db.sql<{ frag_id_job: number }[]>`SELECT frag_id_job FROM frag_jobs`;
  assertEquals(frags.map((f) => Number(f.frag_id_job)), [normal]);
  assertOk(cosystem !== normal && noop !== normal);
});

dbTest("event suspicion leaves Dead and Absent nodes alone (§3)", async (db) => {
  const rs = await insertResources(db.sql, ["node-a", "node-b"], 1);
  await db.sql`UPDATE resources SET state = 'Dead' WHERE resource_id = ${rs[0]}`;
  await jobWithEvent(db, "EXIT_VALUE_OAREXEC", { state: "Launching", resources: rs });
  assertEquals((await ncs(db)).code, 0);
  assertEquals((await getResource(db.sql, rs[0]))?.state, "Dead");
  assertEquals((await getResource(db.sql, rs[1]))?.state, "Alive");
});

dbTest(
  "single-node events suspect the head node, first in alphabetical order (§15)",
  async (db) => {
    const rs = await insertResources(db.sql, ["node-c", "node-a", "node-b"], 1);
    await jobWithEvent(db, "USER_SHELL", { state: "Launching", resources: rs });
    assertEquals((await ncs(db)).code, 1);
    assertEquals((await getResource(db.sql, rs[1]))?.state, "Suspected");
    assertEquals((await getResource(db.sql, rs[0]))?.state, "Alive");
    assertEquals((await getResource(db.sql, rs[2]))?.state, "Alive");
    const [log] = await jobEvents(db.sql, 0, "LOG_SUSPECTED");
    assertEquals(log.hostnames, ["node-a"]);
  },
);

dbTest("the healing script gets '<rid> <host>' lines on stdin", async (db) => {
  const dir = await Deno.makeTempDir({ prefix: "oar-heal-" });
  db.addTempDir(dir);
  const script = `${dir}/heal`;
  await Deno.writeTextFile(script, `#!/bin/sh\ncat > ${dir}/stdin\n`);
  await Deno.chmod(script, 0o755);
  const rs = await insertResources(db.sql, ["node-a", "node-b"], 2);
  await db.sql`UPDATE resources SET next_state = 'Suspected' WHERE network_address = 'node-b'`;
  await jobWithEvent(db, "PING_CHECKER_NODE_SUSPECTED_END_JOB", { state: "Terminated" }, [
    "node-a",
  ]);
  assertEquals((await ncs(db, { SUSPECTED_HEALING_EXEC_FILE: script })).code, 1);
  const lines = (await Deno.readTextFile(`${dir}/stdin`)).trim().split("\n").sort();
  assertEquals(
    lines,
    [
      `${rs[0]} node-a`,
      `${rs[1]} node-a`,
      `${rs[2]} node-b`,
      `${rs[3]} node-b`,
    ].sort(),
  );
});

dbTest("a healing script that hangs is killed at its timeout", async (db) => {
  const dir = await Deno.makeTempDir({ prefix: "oar-heal-" });
  db.addTempDir(dir);
  const script = `${dir}/heal`;
  await Deno.writeTextFile(script, `#!/bin/sh\nexec sleep 30\n`);
  await Deno.chmod(script, 0o755);
  await insertResources(db.sql, ["node-a"], 1);
  await db.sql`UPDATE resources SET next_state = 'Suspected'`;
  const t = Date.now();
  const run = await ncs(db, { SUSPECTED_HEALING_EXEC_FILE: script, SUSPECTED_HEALING_TIMEOUT: 1 });
  assertEquals(run.code, 1);
  assertOk(Date.now() - t < 10_000);
});

dbTest(
  "a burst of identical events is handled once; events of missing jobs are dropped",
  async (db) => {
    const id = await jobWithEvent(db, "RESUME_JOB", { state: "Hold" });
    await addEvent(db.sql, { type: "RESUME_JOB", jobId: id, description: "again" });
    await addEvent(db.sql, { type: "SWITCH_INTO_ERROR_STATE", jobId: 999_999, description: "?" });
    const run = await ncs(db);
    assertEquals(run.notifier.almightyCommands, ["Qresume"]);
    const left = await db.sql`SELECT event_id FROM event_logs WHERE to_check = 'YES'`;
    assertEquals(left.length, 0);
  },
);

dbTest("resubmitJob refuses non-owners, unfinished and interactive jobs", async (db) => {
  const { jobId } = await insertJob(db.sql, { state: "Running", user: "alice" });
  assertEquals((await resubmitJob(db.sql, jobId, "bob")).code, -1);
  assertEquals((await resubmitJob(db.sql, jobId, "alice")).code, -2);
  assertEquals((await resubmitJob(db.sql, 424242, "oar")).code, -3);
  await db.sql`UPDATE jobs SET state = 'Error', job_type = 'INTERACTIVE' WHERE job_id = ${jobId}`;
  assertEquals((await resubmitJob(db.sql, jobId, "alice")).code, -4);
});

dbTest("resubmitJob copies the request and re-points dependants", async (db) => {
  const { jobId, moldableId } = await insertJob(db.sql, {
    state: "Error",
    walltime: 1234,
    types: ["besteffort", "t=v"],
  });
  const [{ res_group_id: g }] = await db.sql<{ res_group_id: number }[]>`
    INSERT INTO job_resource_groups (res_group_moldable_id, res_group_property, res_group_index)
    VALUES (${moldableId}, ${"host = 'it''s'"}, 'LOG') RETURNING res_group_id`;
  await db.sql`
    INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
      res_job_value, res_job_order, res_job_index)
    VALUES (${g}, 'resource_id', 2, 0, 'LOG')`;
  const { jobId: dependant } = await insertJob(db.sql, {});
  await db.sql`
    INSERT INTO job_dependencies (job_id, job_id_required) VALUES (${dependant}, ${jobId})`;
  const r = await resubmitJob(db.sql, jobId, "oar");
  assertEquals(r.code, 0);
  const n = r.newJobId!;
  const [m] = await db.sql<{ moldable_walltime: number; moldable_index: string }[]>`
    SELECT moldable_walltime, moldable_index FROM moldable_job_descriptions
    WHERE moldable_job_id = ${n}`;
  assertEquals([m.moldable_walltime, m.moldable_index], [1234, "CURRENT"]);
  const [grp] = await db.sql<{ res_group_property: string; res_job_value: number }[]>`
    SELECT g.res_group_property, d.res_job_value FROM job_resource_groups g
    JOIN moldable_job_descriptions m ON m.moldable_id = g.res_group_moldable_id
    JOIN job_resource_descriptions d ON d.res_job_group_id = g.res_group_id
    WHERE m.moldable_job_id = ${n} AND d.res_job_index = 'CURRENT'`;
  assertEquals([grp.res_group_property, grp.res_job_value], ["host = 'it''s'", 2]);
  const types = await db.sql<{ type: string }[]>`
    SELECT type FROM job_types WHERE job_id = ${n} ORDER BY type`;
  assertEquals(types.map((t) => t.type), ["besteffort", "t=v"]);
  const [dep] = await db.sql<{ job_id_required: number }[]>`
    SELECT job_id_required FROM job_dependencies WHERE job_id = ${dependant}`;
  assertEquals(Number(dep.job_id_required), n);
  const [ch] = await db.sql<{ challenge: string }[]>`
    SELECT challenge FROM challenges WHERE job_id = ${n}`;
  assertStringIncludes(ch.challenge, "");
  assertOk(ch.challenge.length === 32);
  assertEquals((await resubmitJob(db.sql, jobId, "oar")).code, -6);
});
