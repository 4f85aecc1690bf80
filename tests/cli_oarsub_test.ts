/** oarsub as a real child process on a real database: options, rows written, refusals. */
import { assertEquals, assertMatch, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { waitFor } from "./support/proc.ts";
import { CliEnv } from "./cli_harness_test.ts";

async function platform(env: CliEnv) {
  await env.sql.unsafe("ALTER TABLE resources ADD COLUMN core integer, ADD COLUMN mem integer");
  const ids = await insertResources(env.sql, ["n1", "n2", "n3"], 4);
  await env.sql`UPDATE resources SET core = resource_id, mem = 1024 * (resource_id % 2 + 1)`;
  return ids;
}

function jobIds(stdout: string): number[] {
  return [...stdout.matchAll(/^OAR_JOB_ID=(\d+)$/gm)].map((m) => Number(m[1]));
}

Deno.test("oarsub: a plain job, every row in place, Qsub sent", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  const r = await env.run("oarsub", ["sleep 60"]);
  assertEquals(r.code, 0, r.stderr);
  const [id] = jobIds(r.stdout);
  assertEquals(r.stdout, `OAR_JOB_ID=${id}\n`);
  assertEquals(await env.nextMessage(), '{"cmd": "Qsub"}');
  const [job] = await env.sql`SELECT * FROM jobs WHERE job_id = ${id}`;
  assertEquals(job.state, "Waiting");
  assertEquals(job.job_user, "root");
  assertEquals(job.command, "sleep 60");
  assertEquals(job.queue_name, "default");
  assertEquals(job.job_type, "PASSIVE");
  assertEquals(job.reservation, "None");
  assertEquals(job.array_id, id);
  assertEquals(job.array_index, 1);
  assertEquals(job.project, "default");
  assertEquals(job.checkpoint_signal, 12);
  assertEquals(job.stdout_file, "OAR.%jobid%.stdout");
  assertEquals(job.stderr_file, "OAR.%jobid%.stderr");
  assertEquals(job.message, "R=1,W=2:00:00,J=B");
  assertEquals(job.properties, null);
  assertEquals(job.initial_request, "sleep 60");
  assertOk(job.launching_directory.startsWith("/"));
  const molds = await env
    .sql`SELECT * FROM moldable_job_descriptions WHERE moldable_job_id = ${id}`;
  assertEquals(molds.map((m) => m.moldable_walltime), [7200]);
  const groups = await env.sql`
    SELECT g.res_group_property AS p, d.res_job_resource_type AS t, d.res_job_value AS v
    FROM job_resource_groups g JOIN job_resource_descriptions d ON d.res_job_group_id = g.res_group_id
    WHERE g.res_group_moldable_id = ${molds[0].moldable_id}`;
  assertEquals(groups.map((g) => [g.p, g.t, g.v]), [["type = 'default'", "resource_id", 1]]);
  const [ch] = await env.sql`SELECT * FROM challenges WHERE job_id = ${id}`;
  assertMatch(ch.challenge, /^\d+$/);
  assertMatch(ch.ssh_public_key, /^ssh-ed25519 \S+/);
  assertStringIncludes(ch.ssh_private_key, "OPENSSH PRIVATE KEY");
  const logs = await env.sql`SELECT job_state, date_stop FROM job_state_logs WHERE job_id = ${id}`;
  assertEquals(logs.map((l) => [l.job_state, l.date_stop]), [["Waiting", 0]]);
});

Deno.test("oarsub: -l hierarchy, moldables, groups, -p, and the options stored", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  const dir = await Deno.makeTempDir();
  env.db.addTempDir(dir);
  // -a names a job that exists.
  const dep = await insertJob(env.sql, { user: "root", state: "Terminated" });
  const r = await env.run("oarsub", [
    "-l",
    "/nodes=2/core=2,walltime=1:30",
    "-l",
    "{mem > 1024}/nodes=1+/resource_id=1,walltime=0:10:5",
    "-p",
    "network_address != 'n3' AND core IS NOT NULL",
    "-n",
    'it\'s "mine"',
    "-O",
    "out.%jobname%.%jobid%",
    "-E",
    "err.%jobid%",
    "-d",
    dir,
    "--project",
    "p1",
    "--notify",
    "[END]mail:me@example.org",
    "--checkpoint",
    "600",
    "--signal",
    "10",
    "-t",
    "idempotent",
    "-t",
    "timesharing=user,*",
    "-a",
    String(dep.jobId),
    "./run.sh 'a b' \"$(id)\"",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const [id] = jobIds(r.stdout);
  const [job] = await env.sql`SELECT * FROM jobs WHERE job_id = ${id}`;
  assertEquals(job.properties, "network_address <> 'n3' AND core IS NOT NULL");
  assertEquals(job.job_name, 'it\'s "mine"');
  assertEquals(job.stdout_file, 'out.it\'s "mine".%jobid%');
  assertEquals(job.stderr_file, "err.%jobid%");
  assertEquals(job.launching_directory, dir);
  assertEquals(job.project, "p1");
  assertEquals(job.notify, "[END]mail:me@example.org");
  assertEquals(job.checkpoint, 600);
  assertEquals(job.checkpoint_signal, 10);
  assertEquals(job.command, "./run.sh 'a b' \"$(id)\"");
  assertEquals(job.message, `R=4,W=1:30:00,J=B,N=it's "mine",P=p1,T=idempotent|timesharing=user,*`);
  const molds = await env.sql`
    SELECT m.moldable_walltime AS w, g.res_group_property AS p,
      string_agg(d.res_job_resource_type || '=' || d.res_job_value, '/' ORDER BY d.res_job_order) AS r
    FROM moldable_job_descriptions m
    JOIN job_resource_groups g ON g.res_group_moldable_id = m.moldable_id
    JOIN job_resource_descriptions d ON d.res_job_group_id = g.res_group_id
    WHERE m.moldable_job_id = ${id}
    GROUP BY m.moldable_id, g.res_group_id ORDER BY m.moldable_id, g.res_group_id`;
  assertEquals(molds.map((m) => [m.w, m.p, m.r]), [
    [5400, "type = 'default'", "network_address=2/core=2"],
    [605, "mem > 1024 AND type = 'default'", "network_address=1"],
    [605, "type = 'default'", "resource_id=1"],
  ]);
  const types = await env.sql`SELECT type FROM job_types WHERE job_id = ${id} ORDER BY job_type_id`;
  assertEquals(types.map((t) => t.type), ["idempotent", "timesharing=user,*"]);
  const deps = await env.sql`SELECT job_id_required FROM job_dependencies WHERE job_id = ${id}`;
  assertEquals(deps.map((d) => d.job_id_required), [dep.jobId]);
});

Deno.test("oarsub: arrays, besteffort, hold, reservation, -S, -J", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  const dir = await Deno.makeTempDir();
  env.db.addTempDir(dir);
  // --array N
  let r = await env.run("oarsub", ["--array", "3", "echo hi"]);
  assertEquals(r.code, 0, r.stderr);
  const ids = jobIds(r.stdout);
  assertEquals(ids.length, 3);
  assertStringIncludes(r.stdout, `OAR_ARRAY_ID=${ids[0]}\n`);
  const arr = await env.sql`
    SELECT array_id, array_index FROM jobs WHERE job_id = ANY(${ids}::int[]) ORDER BY job_id`;
  assertEquals(arr.map((a) => [a.array_id, a.array_index]), [[ids[0], 1], [ids[0], 2], [
    ids[0],
    3,
  ]]);
  assertEquals(
    (await env.sql`SELECT count(*)::int AS n FROM challenges WHERE job_id = ANY(${ids}::int[])`)[0]
      .n,
    3,
  );
  // --array-param-file
  await Deno.writeTextFile(`${dir}/params`, "# comment\na 1\n\nb 2\n");
  r = await env.run("oarsub", ["--array-param-file", `${dir}/params`, "./prog"]);
  assertEquals(r.code, 0, r.stderr);
  const pids = jobIds(r.stdout);
  const cmds = await env
    .sql`SELECT command FROM jobs WHERE job_id = ANY(${pids}::int[]) ORDER BY job_id`;
  assertEquals(cmds.map((c) => c.command), ["./prog a 1", "./prog b 2"]);
  // besteffort ⇒ queue besteffort; --hold ⇒ Hold
  r = await env.run("oarsub", ["-t", "besteffort", "--hold", "true"]);
  assertEquals(r.code, 0, r.stderr);
  let [job] = await env.sql`SELECT * FROM jobs WHERE job_id = ${jobIds(r.stdout)[0]}`;
  assertEquals([job.queue_name, job.state], ["besteffort", "Hold"]);
  const [log] = await env.sql`SELECT job_state FROM job_state_logs WHERE job_id = ${job.job_id}`;
  assertEquals(log.job_state, "Hold");
  // queue besteffort ⇒ type besteffort
  r = await env.run("oarsub", ["-q", "besteffort", "true"]);
  const t = await env.sql`SELECT type FROM job_types WHERE job_id = ${jobIds(r.stdout)[0]}`;
  assertEquals(t.map((x) => x.type), ["besteffort"]);
  // advance reservation in the future, no command
  const d = new Date(Date.now() + 3600_000);
  const pad = (n: number) => String(n).padStart(2, "0");
  const when = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  {
    // oarsub waits for the scheduler's verdict on its socket (here the test tells it).
    await env.sql`DELETE FROM jobs`;
    await using o = interactiveOarsub(env, ["-r", when, "-l", "/nodes=1,walltime=1"]);
    const waiting = await waitingJob(env);
    [job] = await env.sql`SELECT * FROM jobs WHERE job_id = ${waiting.job_id}`;
    assertEquals(job.reservation, "toSchedule");
    assertEquals(job.start_time, Math.floor(d.getTime() / 1000));
    assertEquals(job.job_type, "INTERACTIVE");
    assertStringIncludes(job.message, "J=R");
    assertMatch(job.info_type, /:\d+$/);
    // A GOOD RESERVATION the job does not confirm is not believed; once it does, it is.
    await tell(job.info_type, ["GOOD RESERVATION"]);
    await env.sql`UPDATE jobs SET reservation = 'Scheduled' WHERE job_id = ${job.job_id}`;
    r = await o.done;
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stderr, "Reservation valid --> OK");
  }
  {
    await env.sql`DELETE FROM jobs`;
    await using o = interactiveOarsub(env, ["-r", when, "-l", "/nodes=1,walltime=1"]);
    const waiting = await waitingJob(env);
    await tell(waiting.info_type, ["There are not enough resources", "BAD JOB"]);
    r = await o.done;
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "Reservation not valid --> KO");
  }
  // -S: #OAR directives, the command line wins
  await Deno.writeTextFile(
    `${dir}/job.sh`,
    "#!/bin/sh\n#OAR -l /nodes=2,walltime=0:30\n#OAR -n from_script\n#OAR --project sp\necho\n",
  );
  r = await env.run("oarsub", ["-S", "--project", "cli", `${dir}/job.sh`]);
  assertEquals(r.code, 0, r.stderr);
  [job] = await env.sql`SELECT * FROM jobs WHERE job_id = ${jobIds(r.stdout)[0]}`;
  assertEquals([job.job_name, job.project], ["from_script", "cli"]);
  const [m] = await env.sql`
    SELECT moldable_walltime FROM moldable_job_descriptions WHERE moldable_job_id = ${job.job_id}`;
  assertEquals(m.moldable_walltime, 1800);
  // -J
  r = await env.run("oarsub", ["-J", "true"]);
  assertEquals(r.code, 0, r.stderr);
  const parsed = JSON.parse(r.stdout);
  assertOk(Number.isInteger(parsed.job_id));
  // OARDO_USER (we run as root, so it is honoured)
  r = await env.run("oarsub", ["true"], { OARDO_USER: "alice" });
  [job] = await env.sql`SELECT job_user FROM jobs WHERE job_id = ${jobIds(r.stdout)[0]}`;
  assertEquals(job.job_user, "alice");
});

Deno.test("oarsub: refusals leave nothing behind", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  await env.sql`INSERT INTO queues (queue_name, priority, scheduler_policy, state)
    VALUES ('closed', 1, 'kamelot', 'notActive')`;
  const cases: [string[], number, string][] = [
    [["-l", "/nodes=1,walltime=abc", "x"], 251, "bad walltime"],
    [["-l", "/nodes=1,walltime=0", "x"], 251, "bad walltime"],
    [["-l", "/nodes=1/nodes=2", "x"], 251, "given twice"],
    [["-l", "/nodes==2", "x"], 251, "bad value"],
    [["-l", "{core=1", "x"], 251, "unbalanced"],
    [["-l", "/cpu=1", "x"], 251, "unknown resource type"],
    [["-q", "nosuch", "x"], 248, "queue nosuch does not exist"],
    [["-q", "closed", "x"], 248, "queue closed is not active"],
    [["-p", "gpu = 1", "x"], 251, "unknown property 'gpu'"],
    [["-p", "core = 1; drop table jobs", "x"], 251, "';' is not allowed"],
    [["-p", "core = 1 or 1=1 --", "x"], 251, "comments"],
    [["-p", "core in (select resource_id from resources)", "x"], 251, "sub-queries"],
    [["-p", "pg_sleep(5) is null", "x"], 251, "function calls"],
    [["-p", "network_address = 'n1'' or ''a''=''a'", "x"], 251, "not enough resources"],
    [["-l", "{network_address='x'');drop table jobs;--'}/nodes=1", "x"], 251, "not enough"],
    [["-l", "/nodes=4", "x"], 251, "not enough resources"],
    [["-l", "/nodes=1/core=5", "x"], 251, "not enough resources"],
    [["-r", "2001-01-01 00:00:00", "x"], 7, "in the past"],
    [["-r", "next monday", "x"], 7, "Expected format"],
    [[], 5, "Command or interactive flag"],
    [["-I", "--array", "2"], 8, "An array job cannot be interactive."],
    [["-I", "--array-param-file", "/nonexistent"], 9, "cannot be interactive"],
    [["-C", "3"], 20, "Job 3 does not exist."],
    [["-C", "abc"], 1, "invalid job id"],
    [["--notify", "sms:1", "x"], 250, "bad syntax for the notify option"],
    [["--notify", "exec:/bin/x;rm", "x"], 16, "insecure characters"],
    [["-O", "a$(id)", "x"], 12, "invalid stdout"],
    [["-t", "bad type", "x"], 2, "invalid job type"],
    [["-t", "besteffrot", "x"], 2, 'unknown job type "besteffrot"'],
    [["-a", "99999", "x"], 2, "no job 99999"],
    [["-l", "/nodes=1,walltime=200000", "x"], 251, "walltime too long"],
    [["-r", "2037-12-31 00:00:00", "-l", "/nodes=1,walltime=1000", "x"], 251, "2038-01-19"],
    [["-n", "../../etc", "x"], 2, "invalid job name"],
    [["-n", "a\tb", "x"], 2, "invalid job name"],
    [["--project", "p\rq", "x"], 2, "invalid project"],
    [["-t", "inner=99999", "x"], 254, "not a container"],
    [["-t", "besteffort", "-r", "2099-01-01 00:00:00", "x"], 254, "besteffort job cannot"],
    [["-a", "x1", "x"], 2, "bad dependency"],
    [["--array", "0", "x"], 6, "greater than 0"],
    [["--array", "2", "-l", "/nodes=1", "-l", "/nodes=2", "x"], 226, "cannot be moldable"],
    [["--array-param-file", "/nonexistent/params", "x"], 12, "Cannot open the parameter file"],
    [["-q", "admin", "x"], 0, ""], // root may use the admin queue
    [["--bogus", "x"], 2, "Unknown option"],
    [["--signal", "abc", "x"], 2, "needs an integer"],
    [["a", "b"], 2, "unexpected extra argument"],
  ];
  for (const [args, code, expected] of cases) {
    const before = (await env.sql`SELECT count(*)::int AS n FROM jobs`)[0].n;
    const r = await env.run("oarsub", args);
    assertEquals(r.code, code, `${JSON.stringify(args)}: ${r.stderr}`);
    assertStringIncludes(r.stderr, expected, JSON.stringify(args));
    const after = (await env.sql`SELECT count(*)::int AS n FROM jobs`)[0].n;
    assertEquals(after, before + (code === 0 ? 1 : 0), JSON.stringify(args));
  }
  // A command longer than oarexec reads (an argument cannot be: the kernel caps one at 128 KiB,
  // but an array's parameter line adds to it).
  const params = await Deno.makeTempFile();
  await Deno.writeTextFile(params, "x".repeat(140_000) + "\n");
  const long = await env.run("oarsub", ["--array-param-file", params, "echo"]);
  await Deno.remove(params);
  assertEquals(long.code, 2, long.stderr);
  assertStringIncludes(long.stderr, "the command is too long");
  const r = await env.run("oarsub", ["-q", "admin", "x"], { OARDO_USER: "bob" });
  assertEquals(r.code, 254, r.stderr);
  assertStringIncludes(r.stderr, "admin queue");
  // Admission limits (oar.conf) hold users, not root or oar.
  await env.sql`UPDATE jobs SET state = 'Terminated'`;
  const big = await env.run("oarsub", ["--array", "10001", "x"], { OARDO_USER: "bob" });
  assertEquals(big.code, 6, big.stderr);
  assertStringIncludes(big.stderr, "OARSUB_MAX_ARRAY_SIZE");
  for (let i = 0; i < 2; i++) {
    const ok = await env.run("oarsub", ["--array", "10000", "--hold", "x"], { OARDO_USER: "bob" });
    assertEquals(ok.code, 0, ok.stderr);
  }
  const over = await env.run("oarsub", ["x"], { OARDO_USER: "bob" });
  assertEquals(over.code, 254, over.stderr);
  assertStringIncludes(over.stderr, "OARSUB_MAX_WAITING_JOBS_PER_USER");
  assertEquals((await env.run("oarsub", ["--array", "10001", "--hold", "x"])).code, 0);
  await env.sql`UPDATE jobs SET state = 'Terminated'`;
  assertStringIncludes(r.stderr, "admin queue");
  // A user cannot exempt their own job from the quotas; an admin can.
  const nq = await env.run("oarsub", ["-t", "no_quotas", "x"], { OARDO_USER: "bob" });
  assertEquals(nq.code, 254, nq.stderr);
  assertStringIncludes(nq.stderr, "no_quotas");
  assertEquals((await env.run("oarsub", ["-t", "no_quotas", "x"])).code, 0);
  const tables = await env.sql`SELECT to_regclass('jobs') IS NOT NULL AS ok`;
  assertOk(tables[0].ok);
});

Deno.test("oarsub --wait blocks until the job ends and exits with its exit code", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  await using proc = env.spawn("oarsub", ["--wait", "exit 3"]);
  const [job] = await waitFor("the job row", async () => {
    const rows = await env.sql`SELECT job_id FROM jobs`;
    return rows.length ? rows : undefined;
  });
  await env.sql`UPDATE jobs SET state = 'Running' WHERE job_id = ${job.job_id}`;
  // Still waiting while the job runs.
  const early = await Promise.race([
    proc.child.status.then(() => "exited"),
    new Promise((r) => setTimeout(() => r("waiting"), 700)),
  ]);
  assertEquals(early, "waiting");
  await env.sql`UPDATE jobs SET state = 'Terminated', exit_code = ${3 << 8}
    WHERE job_id = ${job.job_id}`;
  const status = await proc.child.status;
  assertEquals(status.code, 3, proc.output());
  assertStringIncludes(proc.output(), `OAR_JOB_ID=${job.job_id}`);
});

// ---------------------------------------------------------------------------------------------
// oarsub -I waiting for its job: the notifications drive it (here the test sends them).

/**
 * oarsub -I as a child. It runs with every permission until lib/permissions/mod.ts grants oarsub
 * its listening socket and shell (tests/interactive_test.ts then goes through `deno task`).
 */
function interactiveOarsub(env: CliEnv, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      new URL("../cli/oarsub/main.ts", import.meta.url).pathname,
      ...args,
    ],
    env: { OARCONFFILE: env.conf, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const d = new TextDecoder();
  const drained = Promise.all([
    (async () => {
      for await (const c of child.stdout) stdout += d.decode(c, { stream: true });
    })(),
    (async () => {
      for await (const c of child.stderr) stderr += d.decode(c, { stream: true });
    })(),
  ]);
  return {
    child,
    stderr: () => stderr,
    done: (async () => {
      const s = await child.status;
      await drained;
      return { code: s.code, stdout, stderr };
    })(),
    [Symbol.asyncDispose]: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
      await drained;
    },
  };
}

async function waitingJob(env: CliEnv) {
  const [job] = await waitFor("the interactive job", async () => {
    const rows = await env.sql<
      { job_id: number; info_type: string; job_type: string; command: string }[]
    >`
      SELECT job_id, info_type, job_type, command FROM jobs`;
    return rows.length ? rows : undefined;
  }, 20_000);
  return job;
}

async function tell(infoType: string, lines: string[]): Promise<void> {
  const port = Number(infoType.slice(infoType.lastIndexOf(":") + 1));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(lines.map((l) => l + "\n").join("")));
  conn.close();
}

Deno.test("oarsub -I: waits on its socket; predictions shown once; BAD JOB ends it (11)", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  await using o = interactiveOarsub(env, ["-I", "-l", "/nodes=1", "ignored command"]);
  const job = await waitingJob(env);
  assertEquals(job.job_type, "INTERACTIVE");
  assertEquals(job.command, "");
  assertMatch(job.info_type, /^[A-Za-z0-9.-]+:\d+$/);
  assertEquals(await env.nextMessage(), '{"cmd": "Qsub -I"}');
  await tell(job.info_type, ["[2026-01-01 10:00:00] Start prediction: 2026-01-01 11:00:00 (R=1)"]);
  await tell(job.info_type, ["[2026-01-01 10:00:30] Start prediction: 2026-01-01 11:00:00 (R=1)"]);
  await tell(job.info_type, ["[2026-01-01 10:01:00] Start prediction: 2026-01-01 12:00:00 (R=1)"]);
  await waitFor("the second prediction", () => o.stderr().includes("12:00:00"), 10_000);
  await tell(job.info_type, ["This job cannot run: no such resource", "BAD JOB"]);
  const r = await o.done;
  assertEquals(r.code, 11, r.stderr);
  assertEquals(r.stdout, `OAR_JOB_ID=${job.job_id}\n`);
  assertStringIncludes(r.stderr, "Asking for an interactive job (-I), so ignoring arguments");
  assertEquals(r.stderr.match(/Start prediction/g)?.length, 2, r.stderr);
  assertStringIncludes(r.stderr, "This job cannot run: no such resource");
  assertStringIncludes(r.stderr, "BAD JOB");
});

Deno.test("oarsub -I: a job ended while waiting (11), ERROR (11), a forged GOOD JOB (20)", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  {
    await using o = interactiveOarsub(env, ["-I"]);
    const job = await waitingJob(env);
    // Nobody tells it: it sees the job's state itself.
    await env.sql`UPDATE jobs SET state = 'Error', message = 'killed' WHERE job_id = ${job.job_id}`;
    const r = await o.done;
    assertEquals(r.code, 11, r.stderr);
    assertStringIncludes(r.stderr, `job ${job.job_id} ended (Error) before it started: killed`);
    await env.sql`DELETE FROM jobs`;
  }
  {
    await using o = interactiveOarsub(env, ["-I"]);
    const job = await waitingJob(env);
    await tell(job.info_type, ["Starting...", "ERROR: an error occured on the first job node"]);
    const r = await o.done;
    assertEquals(r.code, 11, r.stderr);
    assertStringIncludes(r.stderr, "Starting...");
    assertStringIncludes(r.stderr, "ERROR: an error occured on the first job node");
    await env.sql`DELETE FROM jobs`;
  }
  {
    await using o = interactiveOarsub(env, ["-I"]);
    const job = await waitingJob(env);
    // Anyone can connect to the socket: GOOD JOB for a job that is not running opens nothing.
    await tell(job.info_type, ["GOOD JOB"]);
    const r = await o.done;
    assertEquals(r.code, 20, r.stderr);
    assertStringIncludes(r.stderr, `Job ${job.job_id} is not running, current state is Waiting.`);
  }
});

Deno.test("oarsub -I: ^C while waiting deletes the job (frag + Qdel), exit 1", async () => {
  await using env = await CliEnv.create();
  await platform(env);
  await using o = interactiveOarsub(env, ["-I"]);
  const job = await waitingJob(env);
  await waitFor("the wait", () => o.stderr().includes("Interactive mode: waiting..."), 10_000);
  await env.drain();
  o.child.kill("SIGINT");
  const r = await o.done;
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stdout, "Caught Interrupt (^C), cancelling job(s)...");
  const frags = await env.sql`SELECT frag_state FROM frag_jobs WHERE frag_id_job = ${job.job_id}`;
  assertEquals(frags.map((f) => f.frag_state), ["LEON"]);
  const messages = await env.drain();
  assertOk(messages.includes('{"cmd": "Qdel"}'), messages.join(","));
});
