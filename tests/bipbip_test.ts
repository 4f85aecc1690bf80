/**
 * bipbip in-process (docs/modules.md §4, §5; OAR 3's test_bipbip.py): a recording launcher stands
 * in for oarexec (the real one is in execution_e2e_test.ts), server prologue/epilogue are real
 * scripts, the database is real.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { insertJob, insertResources, type JobFixture } from "./support/fixtures.ts";
import { challengeOf, eventTypes, jobState } from "./support/exec_fixtures.ts";
import { bipbip, type BipbipContext } from "../modules/bipbip/bipbip.ts";
import { bipbipLines } from "../modules/bipbip/batch.ts";
import { Config } from "../lib/runtime/config.ts";
import { setupLogging } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import type { Launcher, LaunchResult } from "../lib/launch/launcher.ts";
import { addEvent, jobEvents } from "../lib/job/events.ts";
import { endOfJobEvents } from "../lib/job/end.ts";
import { getJob } from "../lib/job/jobs.ts";
import { parseOarexecDescriptor } from "../lib/protocol/mod.ts";

class RecordingLauncher implements Launcher {
  readonly kind: "ssh" | "local";
  readonly launches: { host: string; descriptor: string }[] = [];
  unreachableHosts: string[] = [];
  constructor(
    readonly result: LaunchResult = { rendezvous: true, exitCode: null, output: "" },
    kind: "ssh" | "local" = "local",
  ) {
    this.kind = kind;
  }
  launch(host: string, descriptor: string): Promise<LaunchResult> {
    this.launches.push({ host, descriptor });
    return Promise.resolve(this.result);
  }
  signalOarexec(): Promise<string | null> {
    return Promise.resolve(null);
  }
  unreachable(hosts: string[]): Promise<string[]> {
    return Promise.resolve(hosts.filter((h) => this.unreachableHosts.includes(h)));
  }
}

interface Rig {
  ctx: BipbipContext;
  launcher: RecordingLauncher;
  notifier: RecordingNotifier;
  dir: string;
}

async function rig(
  db: TestDb,
  conf: Record<string, string | number> = {},
  launcher = new RecordingLauncher(),
): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "oar-bipbip-" });
  db.addTempDir(dir);
  const config = new Config({ ...Object.fromEntries(db.config.entries()), LOG_LEVEL: 1, ...conf });
  const notifier = new RecordingNotifier();
  return {
    ctx: {
      sql: db.sql,
      config,
      log: setupLogging("bipbip-test", config),
      notifier,
      launcher,
      unreachable: (h) => launcher.unreachable(h),
    },
    launcher,
    notifier,
    dir,
  };
}

/** OAR 3's `_test_bipbip_toLaunch`: 4 resources on localhost0..3. */
async function toLaunchJob(db: TestDb, f: JobFixture = {}): Promise<number> {
  const resources = await insertResources(db.sql, [
    "localhost0",
    "localhost1",
    "localhost2",
    "localhost3",
  ], 1);
  const { jobId } = await insertJob(db.sql, { state: "toLaunch", resources, ...f });
  return jobId;
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("bipbip_void: no arguments is exit 1; a bad job id too", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  assertEquals(await bipbip(r.ctx, []), 1);
  assertEquals(await bipbip(r.ctx, ["zorglub"]), 1);
  assertEquals(await bipbip(r.ctx, ["424242"]), 1);
});

Deno.test("bipbip_simple: a Waiting job is not launched (exit 1)", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const jobId = await toLaunchJob(db, { state: "Waiting" });
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 1);
  assertEquals(await jobState(db.sql, jobId), "Waiting");
  assertEquals(r.launcher.launches.length, 0);
});

Deno.test("bipbip_toLaunch: launched on the head node with a full descriptor, Running", async () => {
  await using db = await createTestDb();
  const r = await rig(db, { OAREXEC_DIRECTORY: "/var/tmp/oarx", SERVER_PORT: 7777 });
  const jobId = await toLaunchJob(db, { command: "echo 'it''s' $(x)", walltime: 321 });
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 0);
  assertEquals(await jobState(db.sql, jobId), "Running");
  assertEquals(r.launcher.launches.length, 1);
  assertEquals(r.launcher.launches[0].host, "localhost0");
  const d = parseOarexecDescriptor(r.launcher.launches[0].descriptor);
  assertOk(d.ok);
  assertEquals(d.value.job_id, jobId);
  assertEquals(d.value.command, "echo 'it''s' $(x)");
  assertEquals(d.value.walltime_seconds, 321);
  assertEquals(d.value.tmp_directory, "/var/tmp/oarx");
  assertEquals(d.value.almighty_port, 7777);
  assertEquals(d.value.challenge, await challengeOf(db.sql, jobId));
  assertEquals(d.value.stdout_file, `OAR.${jobId}.stdout`);
  assertEquals(d.value.resources.map((x) => x.network_address), [
    "localhost0",
    "localhost1",
    "localhost2",
    "localhost3",
  ]);
});

Deno.test("bipbip_toLaunch_noop: Running without oarexec", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const jobId = await toLaunchJob(db, { types: ["noop"] });
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 0);
  assertEquals(await jobState(db.sql, jobId), "Running");
  assertEquals(r.launcher.launches.length, 0);
});

Deno.test("bipbip: deploy and cosystem jobs start on their configured head node", async () => {
  await using db = await createTestDb();
  const r = await rig(db, { DEPLOY_HOSTNAME: "deployer", COSYSTEM_HOSTNAME: "cosys" });
  const a = await toLaunchJob(db, { types: ["deploy"] });
  const b = await toLaunchJob(db, { types: ["cosystem"] });
  assertEquals(await bipbip(r.ctx, [String(a)]), 0);
  assertEquals(await bipbip(r.ctx, [String(b)]), 0);
  assertEquals(r.launcher.launches.map((l) => l.host), ["deployer", "cosys"]);
});

Deno.test("bipbip_toLaunch_server_prologue(_env): run once with the OAR_* environment", async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir();
  db.addTempDir(dir);
  const out = join(dir, "env");
  const prologue = await script(dir, "prologue", `echo "$1" >> ${out}; env >> ${out}`);
  const r = await rig(db, { SERVER_PROLOGUE_EXEC_FILE: prologue });
  const jobId = await toLaunchJob(db, { types: ["test=lol", "yop"], name: "n'1", walltime: 60 });
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 0);
  assertEquals(await jobState(db.sql, jobId), "Running");
  const lines = (await Deno.readTextFile(out)).trim().split("\n");
  assertEquals(lines.filter((l) => l === String(jobId)).length, 1, "run once");
  const env = Object.fromEntries(
    lines.slice(1).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  assertEquals(env.OAR_JOB_TYPES.split(";").sort(), ["test=lol", "yop=1"]);
  assertEquals(env.OAR_JOB_ID, String(jobId));
  assertEquals(env.OAR_JOB_NAME, "n'1");
  assertEquals(env.OAR_JOB_WALLTIME_SECONDS, "60");
  assertEquals(env.OAR_USER, "alice");
});

Deno.test("bipbip_toLaunch_server_prologue_return_code: event, not launched, exit 2", async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir();
  db.addTempDir(dir);
  const r = await rig(db, { SERVER_PROLOGUE_EXEC_FILE: await script(dir, "p", "exit 1") });
  const jobId = await toLaunchJob(db);
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 2);
  assertEquals(await eventTypes(db.sql, jobId), ["SERVER_PROLOGUE_EXIT_CODE_ERROR"]);
  assertEquals(await jobState(db.sql, jobId), "Launching");
  assertEquals(r.launcher.launches.length, 0);
  assertOk(r.notifier.almightyCommands.includes("ChState"));
});

Deno.test("bipbip_toLaunch_server_prologue_TimeoutExpired: event, exit 2", async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir();
  db.addTempDir(dir);
  const r = await rig(db, {
    SERVER_PROLOGUE_EXEC_FILE: await script(dir, "p", "exec sleep 30"),
    SERVER_PROLOGUE_EPILOGUE_TIMEOUT: 1,
  });
  const jobId = await toLaunchJob(db);
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 2);
  assertEquals(await eventTypes(db.sql, jobId), ["SERVER_PROLOGUE_TIMEOUT"]);
  assertEquals(r.launcher.launches.length, 0);
});

Deno.test("bipbip_toLaunch_server_prologue_OSError: only logged, launched", async () => {
  await using db = await createTestDb();
  const r = await rig(db, { SERVER_PROLOGUE_EXEC_FILE: "/nonexistent/prologue" });
  const jobId = await toLaunchJob(db);
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 0);
  assertEquals(await jobState(db.sql, jobId), "Running");
});

Deno.test("bipbip: unreachable nodes (ssh launcher) ⇒ PING_CHECKER_NODE_SUSPECTED, exit 2", async () => {
  await using db = await createTestDb();
  const launcher = new RecordingLauncher(undefined, "ssh");
  launcher.unreachableHosts = ["localhost2"];
  const r = await rig(db, {}, launcher);
  const jobId = await toLaunchJob(db);
  assertEquals(await bipbip(r.ctx, [String(jobId)]), 2);
  const [ev] = await jobEvents(db.sql, jobId);
  assertEquals(ev.type, "PING_CHECKER_NODE_SUSPECTED");
  assertEquals(ev.hostnames, ["localhost2"]);
  assertEquals(await jobState(db.sql, jobId), "Launching");
  assertEquals(launcher.launches.length, 0);
});

Deno.test("bipbip: no rendezvous ⇒ LAUNCHING_OAREXEC_TIMEOUT; a known early exit keeps its meaning", async () => {
  await using db = await createTestDb();
  const a = await rig(
    db,
    {},
    new RecordingLauncher({ rendezvous: false, exitCode: null, output: "" }),
  );
  const jobA = await toLaunchJob(db);
  assertEquals(await bipbip(a.ctx, [String(jobA)]), 0);
  assertEquals(await jobState(db.sql, jobA), "Finishing");
  assertEquals(await eventTypes(db.sql, jobA), ["LAUNCHING_OAREXEC_TIMEOUT"]);
  assertEquals(a.notifier.almightyCommands.at(-1), "BipBip");
  const b = await rig(
    db,
    {},
    new RecordingLauncher({ rendezvous: false, exitCode: 7, output: "" }),
  );
  const jobB = await toLaunchJob(db);
  assertEquals(await bipbip(b.ctx, [String(jobB)]), 0);
  assertEquals(await eventTypes(db.sql, jobB), ["USER_SHELL"]);
  const c = await rig(
    db,
    {},
    new RecordingLauncher({ rendezvous: false, exitCode: 255, output: "" }),
  );
  const jobC = await toLaunchJob(db);
  assertEquals(await bipbip(c.ctx, [String(jobC)]), 0);
  assertEquals(await eventTypes(db.sql, jobC), ["LAUNCHING_OAREXEC_TIMEOUT"]);
});

Deno.test("bipbip_running_oarexec_reattachexit_value: good challenge ⇒ check_end_of_job, exit 0", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const jobId = await toLaunchJob(db, { state: "Running" });
  const challenge = await challengeOf(db.sql, jobId);
  assertEquals(await bipbip(r.ctx, [String(jobId), "1", "2", challenge]), 0);
  assertEquals(await jobState(db.sql, jobId), "Finishing");
  assertEquals(await eventTypes(db.sql, jobId), ["PROLOGUE_ERROR"]);
  assertEquals((await getJob(db.sql, jobId))!.exit_code, 2);
});

Deno.test("bipbip_running_oarexec_reattachexit_value_bad_challenge: BIPBIP_CHALLENGE, exit 2", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const jobId = await toLaunchJob(db, { state: "Running" });
  assertEquals(await bipbip(r.ctx, [String(jobId), "1", "2", "bad_challenge"]), 2);
  assertEquals(await eventTypes(db.sql, jobId), ["BIPBIP_CHALLENGE"]);
  assertEquals(await jobState(db.sql, jobId), "Running");
  const [ev] = await jobEvents(db.sql, jobId);
  assertOk(!ev.description.includes(await challengeOf(db.sql, jobId)), "no leak of the challenge");
});

Deno.test("bipbip_running_oarexec_reattachexit_bad_value: exit 2", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const jobId = await toLaunchJob(db, { state: "Running" });
  assertEquals(
    await bipbip(r.ctx, [String(jobId), "bug", "2", await challengeOf(db.sql, jobId)]),
    2,
  );
  assertEquals(await jobState(db.sql, jobId), "Running");
});

Deno.test("bipbip: a report for a toLaunch or finished job has no effect (exit 1)", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  for (const state of ["toLaunch", "Terminated"] as const) {
    const jobId = await toLaunchJob(db, { state });
    assertEquals(
      await bipbip(r.ctx, [String(jobId), "0", "0", await challengeOf(db.sql, jobId)]),
      1,
    );
    assertEquals(await jobState(db.sql, jobId), state);
    assertEquals(await eventTypes(db.sql, jobId), []);
  }
  assertEquals(r.launcher.launches.length, 0);
});

Deno.test("check_end_of_job: the §5.1 table with docs/differences.md §13", () => {
  const job = { job_id: 9, job_user: "u", launching_directory: "/w" };
  const types = (e: number) =>
    endOfJobEvents(e, job, ["h0", "h1"], "/var/lib/oar").events.map((x) => x.type);
  assertEquals(types(0), ["SWITCH_INTO_TERMINATE_STATE"]);
  assertEquals(types(4), ["SWITCH_INTO_ERROR_STATE", "EPILOGUE_ERROR"]);
  assertEquals(types(10), ["SWITCH_INTO_ERROR_STATE", "WORKING_DIRECTORY"]);
  assertEquals(types(12), ["SWITCH_INTO_ERROR_STATE", "WORKING_DIRECTORY", "EPILOGUE_ERROR"]);
  assertEquals(types(20), ["SWITCH_INTO_ERROR_STATE", "OUTPUT_FILES"]);
  assertEquals(types(22), ["SWITCH_INTO_ERROR_STATE", "OUTPUT_FILES", "EPILOGUE_ERROR"]);
  assertEquals(types(5), ["CANNOT_WRITE_NODE_FILE"]);
  assertEquals(types(6), ["CANNOT_WRITE_PID_FILE"]);
  assertEquals(types(7), ["USER_SHELL"]);
  assertEquals(types(8), ["CANNOT_CREATE_TMP_DIRECTORY"]);
  assertEquals(types(30), ["SSH_TRANSFER_TIMEOUT"]);
  assertEquals(types(31), ["BAD_HASHTABLE_DUMP"]);
  assertEquals(types(33), ["SWITCH_INTO_TERMINATE_STATE", "EPILOGUE_ERROR"]);
  for (const e of [34, 40, 42]) assertEquals(types(e), ["SWITCH_INTO_TERMINATE_STATE"]);
  assertEquals(types(41), ["SWITCH_INTO_TERMINATE_STATE", "EPILOGUE_ERROR"]);
  assertEquals(types(50), ["LAUNCHING_OAREXEC_TIMEOUT"]);
  assertEquals(types(99), ["EXIT_VALUE_OAREXEC"]);
  for (const e of [0, 34, 40, 41, 42]) assertOk(endOfJobEvents(e, job, [], "").term, `term ${e}`);
  for (const e of [1, 2, 3, 4, 10, 33, 50]) {
    assertOk(!endOfJobEvents(e, job, [], "").term, `no term ${e}`);
  }
  assertStringIncludes(endOfJobEvents(7, job, ["h0"], "").events[0].description, "suspect node h0");
});

Deno.test("check_end_of_job: exit 3 of a besteffort idempotent job killed by the scheduler", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const a = await toLaunchJob(db, { state: "Running", types: ["besteffort", "idempotent"] });
  await addEvent(db.sql, {
    type: "BESTEFFORT_KILL",
    jobId: a,
    description: "killed for a reservation",
  });
  assertEquals(await bipbip(r.ctx, [String(a), "3", "9", await challengeOf(db.sql, a)]), 0);
  assertEquals(await eventTypes(db.sql, a), [
    "BESTEFFORT_KILL",
    "SWITCH_INTO_ERROR_STATE",
    "RESUBMIT_JOB_AUTOMATICALLY",
  ]);
  const copies = await db.sql<{ job_id: number; state: string }[]>`
    SELECT job_id, state FROM jobs WHERE resubmit_job_id = ${a}`;
  assertEquals(copies.map((c) => c.state), ["Waiting"]);
  const [ev] = await jobEvents(db.sql, a, "RESUBMIT_JOB_AUTOMATICALLY");
  assertStringIncludes(ev.description, `new id = ${copies[0].job_id}`);
  // Without the BESTEFFORT_KILL event: no resubmission.
  const b = await toLaunchJob(db, { state: "Running", types: ["besteffort", "idempotent"] });
  assertEquals(await bipbip(r.ctx, [String(b), "3", "9", await challengeOf(db.sql, b)]), 0);
  assertEquals(await eventTypes(db.sql, b), ["SWITCH_INTO_ERROR_STATE"]);
});

Deno.test("finishing sequence: server epilogue failure and ping at end add events", async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir();
  db.addTempDir(dir);
  const launcher = new RecordingLauncher(undefined, "ssh");
  launcher.unreachableHosts = ["localhost1"];
  const r = await rig(db, {
    SERVER_EPILOGUE_EXEC_FILE: await script(dir, "e", "exit 4"),
    ACTIVATE_PINGCHECKER_AT_JOB_END: "YES",
  }, launcher);
  const jobId = await toLaunchJob(db, { state: "Running" });
  assertEquals(await bipbip(r.ctx, [String(jobId), "0", "0", await challengeOf(db.sql, jobId)]), 0);
  const events = await jobEvents(db.sql, jobId);
  assertEquals(events.map((e) => e.type), [
    "SWITCH_INTO_TERMINATE_STATE",
    "SERVER_EPILOGUE_EXIT_CODE_ERROR",
    "PING_CHECKER_NODE_SUSPECTED_END_JOB",
  ]);
  assertEquals(events[2].hostnames, ["localhost1"]);
  assertEquals(r.notifier.almightyCommands, ["ChState", "Term", "BipBip"]);
});

async function* linesOf(...lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

Deno.test("bipbip --stdin: each line is one invocation, each reported done with its code", async () => {
  await using db = await createTestDb();
  const r = await rig(db);
  const a = await toLaunchJob(db);
  const { jobId: b } = await insertJob(db.sql, { state: "Running" });
  const c = await toLaunchJob(db, { state: "Running" });
  const done: [number, number][] = [];
  const code = await bipbipLines(
    r.ctx,
    linesOf(
      JSON.stringify([String(a)]),
      "not json",
      "",
      JSON.stringify([String(b), "0", "0", "bad_challenge"]),
      JSON.stringify([String(c), "0", "0", await challengeOf(db.sql, c)]),
    ),
    (id, code) => {
      done.push([id, code]);
    },
  );
  assertEquals(code, 2);
  assertEquals(done.sort((x, y) => x[0] - y[0]), [[a, 0], [b, 2], [c, 0]]);
  assertEquals(await jobState(db.sql, a), "Running");
  assertEquals(await jobState(db.sql, c), "Finishing");
  assertEquals(await eventTypes(db.sql, b), ["BIPBIP_CHALLENGE"]);
  assertEquals(r.launcher.launches.length, 1);
  // No line at all: nothing to do, exit 0.
  assertEquals(await bipbipLines(r.ctx, linesOf(), () => {}), 0);
});
