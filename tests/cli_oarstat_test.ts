/** oarstat as a real child process: table, -f, -j, -u, -s, --array, -e, -J, --sql. */
import { assertEquals, assertMatch, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { CliEnv } from "./cli_harness_test.ts";

Deno.test("oarstat: every view", async () => {
  await using env = await CliEnv.create();
  const rids = await insertResources(env.sql, ["n1", "n2"], 1);
  const a = await insertJob(env.sql, { user: "alice", state: "Waiting", name: "w" });
  const b = await insertJob(env.sql, { user: "bob", state: "Running", resources: rids });
  const c = await insertJob(env.sql, { user: "alice", state: "Terminated" });
  await env.sql`UPDATE jobs SET message = 'R=1,W=1:00:00,J=B', start_time = start_time - 3700
    WHERE job_id = ${b.jobId}`;
  await env.sql`UPDATE jobs SET array_id = ${a.jobId} WHERE job_id IN (${a.jobId}, ${c.jobId})`;
  await env.sql`INSERT INTO event_logs (type, job_id, date, description)
    VALUES ('FRAG_JOB_REQUEST', ${a.jobId}, 1000, 'User alice requested')`;

  // Default table: unfinished jobs only.
  let r = await env.run("oarstat", []);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assertEquals(lines[0], "Job id    S User     Duration   System message");
  assertEquals(lines.length, 4);
  assertMatch(lines[2], new RegExp(`^${a.jobId}\\s+W alice\\s+0:00:00 $`));
  assertMatch(lines[3], new RegExp(`^${b.jobId}\\s+R bob\\s+1:01:4\\d R=1,W=1:00:00,J=B$`));
  // -j (any state), repeatable
  r = await env.run("oarstat", ["-j", String(c.jobId), "-j", String(a.jobId)]);
  assertEquals(r.stdout.trimEnd().split("\n").length, 4);
  assertStringIncludes(r.stdout, `${c.jobId}         T alice`);
  // -u USER and -u alone (us: root, who has no job)
  r = await env.run("oarstat", ["-u", "bob"]);
  assertEquals(r.stdout.trimEnd().split("\n").length, 3);
  r = await env.run("oarstat", ["-u"]);
  assertEquals([r.code, r.stdout], [0, ""]);
  // -s
  r = await env.run("oarstat", ["-s", "-j", String(a.jobId), "-j", String(b.jobId)]);
  assertEquals(r.stdout, `${a.jobId}: Waiting\n${b.jobId}: Running\n`);
  r = await env.run("oarstat", ["-s", "--array", String(a.jobId), "-J"]);
  assertEquals(JSON.parse(r.stdout), { [a.jobId]: "Waiting", [c.jobId]: "Terminated" });
  // -e
  r = await env.run("oarstat", ["-e", "-j", String(a.jobId)]);
  assertStringIncludes(r.stdout, "FRAG_JOB_REQUEST");
  assertStringIncludes(r.stdout, "User alice requested");
  r = await env.run("oarstat", ["--events", "-j", String(a.jobId), "-J"]);
  assertEquals(JSON.parse(r.stdout)[String(a.jobId)][0].type, "FRAG_JOB_REQUEST");
  // -J with OAR's keys
  r = await env.run("oarstat", ["-J", "-j", String(b.jobId)]);
  const j = JSON.parse(r.stdout)[String(b.jobId)];
  assertEquals([j.id, j.user, j.state, j.type, j.queue_name], [
    b.jobId,
    "bob",
    "Running",
    "PASSIVE",
    "default",
  ]);
  assertEquals(j.cpuset_name, `bob_${b.jobId}`);
  assertOk("name" in j && "env" in j && "group" in j && "stdout_file" in j);
  // -f
  r = await env.run("oarstat", ["-f", "-j", String(b.jobId)]);
  assertStringIncludes(r.stdout, `id: ${b.jobId}\n`);
  assertStringIncludes(r.stdout, "    user = bob\n");
  assertStringIncludes(r.stdout, "    network_adresses = n1,n2\n");
  // --sql on the jobs table
  r = await env.run("oarstat", ["--sql", "job_user = 'alice' and state = 'Terminated'"]);
  assertEquals(r.stdout.trimEnd().split("\n").length, 3);
  // refusals
  r = await env.run("oarstat", ["--sql", "job_user = 'x'; delete from jobs"]);
  assertEquals(r.code, 251);
  assertStringIncludes(r.stderr, "';' is not allowed");
  r = await env.run("oarstat", ["-j", "abc"]);
  assertEquals(r.code, 2);
  r = await env.run("oarstat", ["-j", "1", "--array", "1"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "Conflicting Job IDs and Array IDs");
  r = await env.run("oarstat", ["--nope"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "Usage: oarstat");
  r = await env.run("oarstat", ["-s"]);
  assertStringIncludes(r.stderr, "No job ids specified");
  assertEquals((await env.sql`SELECT count(*)::int AS n FROM jobs`)[0].n, 3);
});
