/**
 * leon (docs/modules.md §6; OAR 3's test_leon.py): in-process with a recording launcher for
 * OAR 3's scenarios, the local launcher's real signal on a real process, and the module as
 * a real child for its exit codes.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./support/assert.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { insertJob, insertResources, type JobFixture } from "./support/fixtures.ts";
import { alive, entryArgs, eventTypes, jobState } from "./support/exec_fixtures.ts";
import { leon, type LeonContext } from "../modules/leon/leon.ts";
import { Config, readConfigFile } from "../lib/runtime/config.ts";
import { setupLogging } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import type { Launcher, LaunchResult } from "../lib/launch/launcher.ts";
import { LocalLauncher } from "../lib/launch/local.ts";
import { launcherSignaller } from "../lib/launch/oarexec_signal.ts";
import { fragJob, fragState, setFragState } from "../lib/job/frag.ts";

class SignalRecorder implements Launcher {
  readonly kind = "local" as const;
  readonly signals: { host: string; jobId: number; signal: string }[] = [];
  launch(): Promise<LaunchResult> {
    throw new Error("leon does not launch");
  }
  signalOarexec(host: string, jobId: number, signal: string): Promise<string | null> {
    this.signals.push({ host, jobId, signal });
    return Promise.resolve(null);
  }
  unreachable(): Promise<string[]> {
    return Promise.resolve([]);
  }
}

function ctxFor(db: TestDb, launcher: Launcher, conf: Record<string, string | number> = {}) {
  const config = new Config({ ...Object.fromEntries(db.config.entries()), LOG_LEVEL: 1, ...conf });
  const notifier = new RecordingNotifier();
  const ctx: LeonContext = {
    sql: db.sql,
    config,
    log: setupLogging("leon-test", config),
    notifier,
    signaller: launcherSignaller(launcher),
    unreachable: () => Promise.resolve([]),
  };
  return { ctx, notifier };
}

async function fraggedJob(db: TestDb, f: JobFixture, frag?: "LEON_EXTERMINATE"): Promise<number> {
  const resources = await insertResources(db.sql, ["localhost1", "localhost0"], 1);
  const { jobId } = await insertJob(db.sql, { resources, ...f });
  assertEquals(await fragJob(db.sql, jobId, "root"), 0);
  if (frag) await setFragState(db.sql, jobId, frag);
  return jobId;
}

Deno.test("leon_void: nothing to do ⇒ exit 0", async () => {
  await using db = await createTestDb();
  const { ctx } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, []), 0);
});

Deno.test("leon_simple: leon <id> without frag row ⇒ exit 0; leon zorglub ⇒ exit 1", async () => {
  await using db = await createTestDb();
  const { jobId } = await insertJob(db.sql, { state: "Running" });
  const { ctx } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, [String(jobId)]), 0);
  assertEquals(await eventTypes(db.sql, jobId), []);
  assertEquals(await leon(ctx, ["zorglub"]), 1);
});

Deno.test("leon_exterminate_jobid: EXTERMINATE_JOB, TIMER_ARMED, ChState", async () => {
  await using db = await createTestDb();
  const jobId = await fraggedJob(db, { state: "Finishing" }, "LEON_EXTERMINATE");
  const { ctx, notifier } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, [String(jobId)]), 0);
  assertEquals(await eventTypes(db.sql, jobId), ["FRAG_JOB_REQUEST", "EXTERMINATE_JOB"]);
  assertEquals(await fragState(db.sql, jobId), "TIMER_ARMED");
  assertOk(notifier.almightyCommands.includes("ChState"));
  // Done once: a second run finds nothing to exterminate.
  assertEquals(await leon(ctx, [String(jobId)]), 0);
  assertEquals((await eventTypes(db.sql, jobId)).filter((t) => t === "EXTERMINATE_JOB").length, 1);
});

Deno.test("leon_exterminate: plain leon puts the job in Finishing and asks the commander", async () => {
  await using db = await createTestDb();
  const jobId = await fraggedJob(db, { state: "Running" }, "LEON_EXTERMINATE");
  const waiting = await fraggedJob(db, { state: "Waiting" }, "LEON_EXTERMINATE");
  const done = await fraggedJob(db, { state: "Terminated" }, "LEON_EXTERMINATE");
  const { ctx, notifier } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, []), 0);
  assertEquals(await jobState(db.sql, jobId), "Finishing");
  assertEquals(await jobState(db.sql, waiting), "Finishing");
  const [w] = await db.sql<{ start_time: number; stop_time: number; message: string }[]>`
    SELECT start_time, stop_time, message FROM jobs WHERE job_id = ${waiting}`;
  assertOk(w.start_time > 0 && w.stop_time >= w.start_time);
  assertEquals(w.message, "Job exterminated by Leon");
  assertEquals(notifier.commanderMessages, [
    { job_id: jobId, cmd: "LEONEXTERMINATE", args: [] },
    { job_id: waiting, cmd: "LEONEXTERMINATE", args: [] },
  ]);
  // A job that already ended is not exterminated (its nodes are not suspected).
  assertEquals(await jobState(db.sql, done), "Terminated");
  assertEquals(await fragState(db.sql, done), "FRAGGED");
});

Deno.test("leon_get_jobs_to_kill_waiting: a Waiting (or Hold) job goes to Error, exit 1", async () => {
  await using db = await createTestDb();
  const a = await fraggedJob(db, { state: "Waiting" });
  const b = await fraggedJob(db, { state: "Hold" });
  const { ctx } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, []), 1);
  assertEquals(await jobState(db.sql, a), "Error");
  assertEquals(await jobState(db.sql, b), "Error");
  assertEquals(await fragState(db.sql, a), "TIMER_ARMED");
});

Deno.test("leon_get_jobs_to_kill_terminated: a Terminated job stays so, exit 0", async () => {
  await using db = await createTestDb();
  const jobId = await fraggedJob(db, { state: "Terminated" });
  const { ctx } = ctxFor(db, new SignalRecorder());
  assertEquals(await leon(ctx, []), 0);
  assertEquals(await jobState(db.sql, jobId), "Terminated");
  assertEquals(await fragState(db.sql, jobId), "LEON");
});

Deno.test("leon_get_jobs_to_kill_noop: a Running noop job is Terminated, exit 1", async () => {
  await using db = await createTestDb();
  const jobId = await fraggedJob(db, { state: "Running", types: ["noop"] });
  const recorder = new SignalRecorder();
  const { ctx } = ctxFor(db, recorder);
  assertEquals(await leon(ctx, []), 1);
  assertEquals(await jobState(db.sql, jobId), "Terminated");
  assertEquals(recorder.signals, []);
});

Deno.test("leon_get_jobs_to_kill_running(_deploy): SEND_KILL_JOB and TERM to the head node", async () => {
  await using db = await createTestDb();
  const running = await fraggedJob(db, { state: "Running" });
  const deploy = await fraggedJob(db, { state: "Running", types: ["deploy"] });
  const recorder = new SignalRecorder();
  const { ctx } = ctxFor(db, recorder, { DEPLOY_HOSTNAME: "deployhost" });
  assertEquals(await leon(ctx, []), 0);
  assertEquals(recorder.signals, [
    { host: "localhost0", jobId: running, signal: "TERM" },
    { host: "deployhost", jobId: deploy, signal: "TERM" },
  ]);
  assertEquals(await eventTypes(db.sql, running), ["FRAG_JOB_REQUEST", "SEND_KILL_JOB"]);
  assertEquals(await jobState(db.sql, running), "Running");
  assertEquals(await fragState(db.sql, running), "TIMER_ARMED");
});

Deno.test("a job whose oarexec ignores TERM is exterminated (leon <id> path)", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir({ prefix: "oar-leon-" });
  db.addTempDir(dir);
  const conf = await writeConfigFile(db, { OAREXEC_LAUNCHER: "local", OAREXEC_DIRECTORY: dir });
  const config = readConfigFile(conf);
  // An "oarexec" deaf to TERM (a hung node's, say), in a session of its own.
  const deaf = new Deno.Command("setsid", {
    args: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.2; done"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = deaf.stdout.getReader();
  await reader.read();
  try {
    const jobId = await fraggedJob(db, { state: "Running" });
    await Deno.writeTextFile(join(dir, `pid_of_oarexec_for_jobId_${jobId}`), String(deaf.pid));
    const launcher = new LocalLauncher(config);
    const { ctx, notifier } = ctxFor(db, launcher, {
      OAREXEC_LAUNCHER: "local",
      OAREXEC_DIRECTORY: dir,
    });
    // The kill pass sends TERM for real: the process ignores it.
    assertEquals(await leon(ctx, []), 0);
    assertEquals(await eventTypes(db.sql, jobId), ["FRAG_JOB_REQUEST", "SEND_KILL_JOB"]);
    const err = await launcher.signalOarexec("localhost0", jobId, "TERM", { wait: true });
    assertEquals(err, null);
    assertOk(alive(deaf.pid));
    assertEquals(await jobState(db.sql, jobId), "Running");
    // Sarko, past LEON_WALLTIME, asks for extermination; leon's pass and then leon <id>.
    assertOk(await setFragState(db.sql, jobId, "LEON_EXTERMINATE", "TIMER_ARMED"));
    assertEquals(await leon(ctx, []), 0);
    assertEquals(await jobState(db.sql, jobId), "Finishing");
    const [msg] = notifier.commanderMessages;
    assertEquals(msg, { job_id: jobId, cmd: "LEONEXTERMINATE", args: [] });
    assertEquals(await leon(ctx, msg.args.length ? msg.args : [String(msg.job_id)]), 0);
    assertEquals(await eventTypes(db.sql, jobId), [
      "FRAG_JOB_REQUEST",
      "SEND_KILL_JOB",
      "EXTERMINATE_JOB",
    ]);
    assertEquals(await fragState(db.sql, jobId), "TIMER_ARMED");
  } finally {
    try {
      Deno.kill(-deaf.pid, "SIGKILL");
    } catch { /* gone */ }
    await reader.cancel();
    await deaf.status;
  }
});

Deno.test("leon as a real process: exit codes", async () => {
  await using db = await createTestDb();
  const conf = await writeConfigFile(db, { OAREXEC_LAUNCHER: "local", LOG_LEVEL: 1 });
  const config = readConfigFile(conf);
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: entryArgs("leon", config, args),
      env: { OARCONFFILE: conf },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.code;
  };
  assertEquals(await run(["zorglub"]), 1);
  const jobId = await fraggedJob(db, { state: "Waiting" });
  assertEquals(await run([]), 1);
  assertEquals(await jobState(db.sql, jobId), "Error");
  assertEquals(await run([]), 0);
});
