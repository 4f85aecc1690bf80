/** oardel, oarhold, oarresume as real child processes: requests, permissions, messages. */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { CliEnv } from "./cli_harness_test.ts";

async function events(env: CliEnv, jobId: number): Promise<string[]> {
  const rows = await env.sql`SELECT type FROM event_logs WHERE job_id = ${jobId} ORDER BY event_id`;
  return rows.map((r) => r.type);
}

Deno.test("oardel: owner, others, admin, twice, missing; Qdel sent", async () => {
  await using env = await CliEnv.create();
  const a = await insertJob(env.sql, { user: "alice" });
  const b = await insertJob(env.sql, { user: "bob" });
  let r = await env.run("oardel", [String(a.jobId)], { OARDO_USER: "bob" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `Cannot frag ${a.jobId} ; You are not the right user.`);
  assertEquals(await events(env, a.jobId), []);
  r = await env.run("oardel", [String(a.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, `Deleting the job = ${a.jobId} ...REGISTERED.`);
  assertEquals(await events(env, a.jobId), ["FRAG_JOB_REQUEST"]);
  assertEquals(await env.drain(), ['{"cmd": "ChState"}', '{"cmd": "Qdel"}']);
  r = await env.run("oardel", [String(a.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 6);
  assertStringIncludes(r.stderr, "This job was already killed.");
  r = await env.run("oardel", ["999999"]);
  assertEquals(r.code, 7);
  assertStringIncludes(r.stderr, "Job does not exist.");
  // Two different errors: 15.
  r = await env.run("oardel", ["999999", String(a.jobId)]);
  assertEquals(r.code, 15);
  // root may delete anyone's job
  r = await env.run("oardel", [String(b.jobId)]);
  assertEquals(r.code, 0, r.stderr);
  const frags = await env.sql`SELECT frag_id_job FROM frag_jobs ORDER BY frag_id_job`;
  assertEquals(frags.map((f) => f.frag_id_job), [a.jobId, b.jobId]);
  // bad arguments
  r = await env.run("oardel", []);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "Usage: oardel");
  r = await env.run("oardel", ["1;drop"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "invalid job id");
  // -c on a job that is not running (tests/oardel_signal_test.ts covers running ones).
  r = await env.run("oardel", ["-c", String(b.jobId)]);
  assertEquals(r.code, 5);
  assertStringIncludes(r.stderr, "is not in the Running state");
});

Deno.test("oardel: --array, --sql, -b and --force-terminate-finishing-job", async () => {
  await using env = await CliEnv.create();
  const a1 = await insertJob(env.sql, { user: "alice" });
  const a2 = await insertJob(env.sql, { user: "alice" });
  await env.sql`UPDATE jobs SET array_id = ${a1.jobId} WHERE job_id IN (${a1.jobId}, ${a2.jobId})`;
  let r = await env.run("oardel", ["--array", String(a1.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await events(env, a2.jobId), ["FRAG_JOB_REQUEST"]);
  r = await env.run("oardel", ["--array", "424242"]);
  assertEquals(r.code, 4);
  const p = await insertJob(env.sql, { user: "carol", name: "tagged" });
  r = await env.run("oardel", ["--sql", "job_name = 'tagged'"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await events(env, p.jobId), ["FRAG_JOB_REQUEST"]);
  r = await env.run("oardel", ["--sql", "job_name = 'x' or 1=1; --"]);
  assertEquals(r.code, 251);
  // -b toggles besteffort on Running jobs, admins only
  const run = await insertJob(env.sql, { user: "alice", state: "Running" });
  r = await env.run("oardel", ["-b", String(run.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 8);
  r = await env.run("oardel", ["-b", String(run.jobId)]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, `Add besteffort type for the job ${run.jobId}.`);
  r = await env.run("oardel", ["-b", String(run.jobId)]);
  assertStringIncludes(r.stdout, `Remove besteffort type for the job ${run.jobId}.`);
  assertEquals(await events(env, run.jobId), [
    "ADD_BESTEFFORT_JOB_TYPE",
    "DELETE_BESTEFFORT_JOB_TYPE",
  ]);
  r = await env.run("oardel", ["-b", String(p.jobId)]);
  assertEquals(r.code, 9);
  // --force-terminate-finishing-job
  const fin = await insertJob(env.sql, { user: "alice", state: "Finishing" });
  r = await env.run("oardel", ["--force-terminate-finishing-job", String(fin.jobId)]);
  assertEquals(r.code, 11);
  await env
    .sql`UPDATE job_state_logs SET date_start = date_start - 10000 WHERE job_id = ${fin.jobId}`;
  r = await env.run("oardel", ["--force-terminate-finishing-job", String(fin.jobId)]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await events(env, fin.jobId), ["FORCE_TERMINATE_FINISHING_JOB"]);
  r = await env.run("oardel", ["--force-terminate-finishing-job", String(run.jobId)]);
  assertEquals(r.code, 10);
});

Deno.test("oarhold / oarresume: events, states, permissions", async () => {
  await using env = await CliEnv.create({ USERS_ALLOWED_HOLD_RESUME: "no" });
  const w = await insertJob(env.sql, { user: "alice" });
  const run = await insertJob(env.sql, { user: "alice", state: "Running" });
  const held = await insertJob(env.sql, { user: "alice", state: "Hold" });
  const dep = await insertJob(env.sql, { user: "alice", state: "Running", types: ["deploy"] });
  let r = await env.run("oarhold", [String(w.jobId)], { OARDO_USER: "bob" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "you are not the right user");
  r = await env.run("oarhold", [String(w.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout, `[${w.jobId}] Hold request was sent to the OAR server.\n`);
  assertEquals(await events(env, w.jobId), ["HOLD_WAITING_JOB"]);
  assertEquals(await env.drain(), ['{"cmd": "ChState"}']);
  r = await env.run("oarhold", [String(run.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "not in the right state (try '-r' option)");
  r = await env.run("oarhold", ["-r", String(run.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "only oar or root users can use '-r' option");
  r = await env.run("oarhold", ["-r", String(run.jobId)]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await events(env, run.jobId), ["HOLD_RUNNING_JOB"]);
  r = await env.run("oarhold", ["-r", String(dep.jobId)]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "deploy type");
  r = await env.run("oarhold", ["999999"]);
  assertStringIncludes(r.stderr, "this job does not exist");
  // oarresume
  r = await env.run("oarresume", [String(held.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await events(env, held.jobId), ["RESUME_JOB"]);
  r = await env.run("oarresume", [String(w.jobId)]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "not in the right state");
  await env.sql`UPDATE jobs SET state = 'Suspended' WHERE job_id = ${run.jobId}`;
  r = await env.run("oarresume", [String(run.jobId)], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "only oar or root");
  r = await env.run("oarresume", [String(run.jobId)]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarresume", ["--bogus"]);
  assertEquals(r.code, 2);
});

Deno.test("oardel --array of thousands: set-based, one summary line, every job fragged once", async () => {
  await using env = await CliEnv.create();
  await insertResources(env.sql, ["n1"], 1);
  let r = await env.run("oarsub", ["--array", "3000", "--hold", "true"]);
  assertEquals(r.code, 0, r.stderr);
  const arrayId = Number(/OAR_ARRAY_ID=(\d+)/.exec(r.stdout)![1]);
  r = await env.run("oardel", ["--array", String(arrayId)], { OARDO_USER: "bob" });
  assertEquals(r.code, 1, r.stderr);
  assertEquals(r.stdout.trim(), "Deleting 3000 jobs: 3000 not yours (refused).");
  r = await env.run("oardel", ["--array", String(arrayId)]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim(), "Deleting 3000 jobs: 3000 REGISTERED.");
  const [{ frags, events }] = await env.sql`
    SELECT (SELECT count(*)::int FROM frag_jobs) AS frags,
      (SELECT count(*)::int FROM event_logs WHERE type = 'FRAG_JOB_REQUEST') AS events`;
  assertEquals([frags, events], [3000, 3000]);
  r = await env.run("oardel", ["--array", String(arrayId)]);
  assertEquals(r.code, 6, r.stderr);
  assertEquals(r.stdout.trim(), "Deleting 3000 jobs: 3000 already being deleted.");
});
