/**
 * setJobsState (lib/job/jobs.ts): the bulk form of setJobState must leave exactly what setJobState
 * leaves, job by job. Each case runs on twin jobs: one changed by setJobState, the other by
 * setJobsState, and their rows are compared.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import type { Sql } from "../lib/db/client.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { setJobsState, setJobState } from "../lib/job/jobs.ts";
import type { JobState } from "../lib/job/states.ts";

/** What a state change leaves for one job, without ids and clock values. */
async function footprint(sql: Sql, jobId: number) {
  const [job] = await sql<{ state: string; message: string; stop_ok: boolean }[]>`
    SELECT state, message, stop_time >= start_time AS stop_ok FROM jobs WHERE job_id = ${jobId}`;
  const logs = await sql<{ job_state: string; open: boolean; chained: boolean }[]>`
    SELECT job_state, date_stop = 0 AS open,
      (date_stop = 0 OR date_stop >= date_start) AS chained
    FROM job_state_logs WHERE job_id = ${jobId} ORDER BY job_state_log_id`;
  const [idx] = await sql<{ moldable: string; assigned: string[] | null }[]>`
    SELECT (SELECT moldable_index::text FROM moldable_job_descriptions
            WHERE moldable_job_id = ${jobId} LIMIT 1) AS moldable,
      (SELECT array_agg(DISTINCT ar.assigned_resource_index::text) FROM assigned_resources ar
       JOIN jobs j ON j.assigned_moldable_job = ar.moldable_job_id
       WHERE j.job_id = ${jobId}) AS assigned`;
  return { job, logs, idx };
}

Deno.test("setJobsState: same effects as setJobState, job by job, in one call", async () => {
  await using db = await createTestDb();
  const rids = await insertResources(db.sql, ["n1", "n2"], 2);
  const one = new RecordingNotifier();
  const bulk = new RecordingNotifier();
  // Twins: [state before, resources] → each case once per function.
  const cases: { state: JobState; resources?: number[] }[] = [
    { state: "Waiting" },
    { state: "Waiting" },
    { state: "toLaunch" }, // already there: no-op
    { state: "Terminated" }, // final: never left
    { state: "Error" },
  ];
  const singles: number[] = [], twins: number[] = [];
  for (const c of cases) {
    singles.push((await insertJob(db.sql, { state: c.state })).jobId);
    twins.push((await insertJob(db.sql, { state: c.state })).jobId);
  }
  const changedOne: number[] = [];
  for (const id of singles) {
    if (await setJobState(db.sql, one, id, "toLaunch", { message: "go" })) changedOne.push(id);
  }
  // Unknown ids and duplicates are harmless.
  const changedBulk = await setJobsState(
    db.sql,
    bulk,
    [...twins, twins[0], 999999],
    "toLaunch",
    { message: "go" },
  );
  assertEquals(changedOne.map((id) => singles.indexOf(id)), [0, 1]);
  assertEquals(changedBulk.map((id) => twins.indexOf(id)), [0, 1]);
  for (let i = 0; i < cases.length; i++) {
    assertEquals(
      await footprint(db.sql, twins[i]),
      await footprint(db.sql, singles[i]),
      `case ${i}`,
    );
  }
  // Non-final states wake nobody.
  assertEquals(bulk.almightyCommands, []);
  assertEquals(one.almightyCommands, []);

  // A final state: stop time, resources' last_job_date, LOG indexes, one ChState.
  const a = await insertJob(db.sql, { state: "Running", resources: [rids[0], rids[1]] });
  const b = await insertJob(db.sql, { state: "Running", resources: [rids[2], rids[3]] });
  const c = await insertJob(db.sql, { state: "Running", resources: [rids[2]] });
  assertEquals(await setJobState(db.sql, one, a.jobId, "Error"), true);
  assertEquals(
    await setJobsState(db.sql, bulk, [c.jobId, b.jobId], "Error"),
    [b.jobId, c.jobId].sort((x, y) => x - y),
  );
  assertEquals(await footprint(db.sql, b.jobId), await footprint(db.sql, a.jobId));
  assertEquals(await footprint(db.sql, c.jobId), await footprint(db.sql, a.jobId));
  assertEquals(bulk.almightyCommands, ["ChState"]);
  const dates = await db.sql<{ resource_id: number; last_job_date: number }[]>`
    SELECT resource_id, last_job_date FROM resources ORDER BY resource_id`;
  for (const d of dates) assertOk(d.last_job_date > 0, `resource ${d.resource_id}`);
  // Nothing left to change: an empty result, no message.
  assertEquals(await setJobsState(db.sql, bulk, [b.jobId, c.jobId], "Error"), []);
  assertEquals(await setJobsState(db.sql, bulk, [], "Error"), []);
  assertEquals(bulk.almightyCommands, ["ChState"]);
});

Deno.test("setJobsState: many jobs, state logs chained to the second", async () => {
  await using db = await createTestDb();
  const n = new RecordingNotifier();
  const ids: number[] = [];
  for (let i = 0; i < 50; i++) ids.push((await insertJob(db.sql)).jobId);
  assertEquals((await setJobsState(db.sql, n, ids, "toLaunch")).length, 50);
  assertEquals((await setJobsState(db.sql, n, ids, "Launching")).length, 50);
  const logs = await db.sql<{ job_id: number; job_state: string; date_stop: number }[]>`
    SELECT job_id, job_state, date_stop FROM job_state_logs
    WHERE job_id = ANY(${ids}::int[]) ORDER BY job_id, job_state_log_id`;
  assertEquals(logs.length, 150);
  for (let i = 0; i < 50; i++) {
    const mine = logs.slice(3 * i, 3 * i + 3);
    assertEquals(mine.map((l) => l.job_state), ["Waiting", "toLaunch", "Launching"]);
    assertEquals(mine.map((l) => l.date_stop === 0), [false, false, true]);
  }
  const [{ n: launching }] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM jobs WHERE state = 'Launching'`;
  assertEquals(launching, 50);
});
