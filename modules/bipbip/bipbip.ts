/**
 * bipbip (docs/modules.md §4): `bipbip <job_id>` launches a toLaunch job on its head node through
 * the configured launcher; `bipbip <job_id> <oarexec_exit> <script_exit> <challenge>` handles
 * oarexec's report at the job's end. Exit codes: 0 done, 1 nothing to do or bad invocation,
 * 2 error.
 *
 * Differences from the reference, on purpose:
 * - the server prologue runs once, with the OAR_* environment; its failure stops the launch
 *   (docs/differences.md §1);
 * - the node check before a launch only runs with the ssh launcher (the local launcher's nodes
 *   are names of this host), and is our built-in TCP check (docs/differences.md §2);
 * - a report for a job that is not running has no effect (exit 1): it never launches a job;
 * - oarexec's own exit code before the rendezvous (prologue failure, …) is used when known,
 *   instead of the blanket 50;
 * - an interactive job whose oarsub cannot be told `GOOD JOB` is fragged (docs/differences.md §8);
 * - no cpusets (JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD is ignored, with a warning);
 * - `bipbip <job_id> --lost-launch` (from bipbip_commander, whose launch of the job
 *   died) launches the job if it is still toLaunch and ends one left in Launching, at once
 *   instead of at sarko's stuck-job limit (issue 22).
 */
import { localHosts } from "../../lib/launch/local_hosts.ts";
import {
  checkEndOfJob,
  type JobEndContext,
  runServerScript,
  serverScriptEnv,
} from "../../lib/job/end.ts";
import { addEvent } from "../../lib/job/events.ts";
import { fragJob, FragResult, setFragState } from "../../lib/job/frag.ts";
import {
  getJob,
  getJobTypes,
  type Job,
  jobCurrentHosts,
  setJobMessage,
  setJobState,
} from "../../lib/job/jobs.ts";
import { RUNNING_LIKE_STATES, stateIn } from "../../lib/job/states.ts";
import type { Launcher, LaunchResult } from "../../lib/launch/launcher.ts";
import { EARLY_EXITS, OarexecExit } from "../../lib/exec/exit_codes.ts";
import {
  encodeOarexecDescriptor,
  InteractiveMessages,
  type JobTypes,
  LOST_LAUNCH_ARG,
  type OarexecDescriptor,
} from "../../lib/protocol/mod.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { announceStart, tellOarsub } from "../../lib/job/launch_notify.ts";
import { headHostOf } from "../../lib/job/head_host.ts";

export interface BipbipContext extends JobEndContext {
  launcher: Launcher;
  /** The host name oarexec reports to when SERVER_HOSTNAME is local (ssh launcher only). */
  hostname?: () => string;
}

async function challengeOf(sql: Queryable, jobId: number): Promise<string | null> {
  const rows = await sql<{ challenge: string | null }[]>`
    SELECT challenge FROM challenges WHERE job_id = ${jobId}`;
  return rows.length ? rows[0].challenge ?? "" : null;
}

export async function bipbip(ctx: BipbipContext, args: string[]): Promise<number> {
  const { sql, log } = ctx;
  if (args.length === 0) {
    log.error("usage: bipbip <job_id> [<oarexec_exit> <script_exit> <challenge>]");
    return 1;
  }
  if (!/^\d{1,12}$/.test(args[0])) {
    log.error("bad job id {arg}", { arg: args[0] });
    return 1;
  }
  const jobId = Number(args[0]);
  const job = await getJob(sql, jobId);
  if (!job) {
    log.warn("[{id}] no such job", { id: jobId });
    return 1;
  }
  if (args.length === 2 && args[1] === LOST_LAUNCH_ARG) return await lostLaunch(ctx, job);
  if (args.length > 1) return await endOfJob(ctx, job, args.slice(1));
  return await launch(ctx, job);
}

/** The event recording why a job left in Launching was ended. */
export const LOST_LAUNCH_EVENT = "BIPBIP_LAUNCH_LOST";

/**
 * The job's launch died before reporting (bipbip_commander saw it; no other bipbip
 * launches it). Still toLaunch: the launch never began, it is done now. Left in Launching: its
 * oarexec may or may not run, and nothing will move it on (sarko would, over a minute later).
 * It ends as sarko ends a Running job whose oarexec is gone: fragged straight to
 * LEON_EXTERMINATE (Leon moves it to Finishing, EXTERMINATE_JOB puts it in Error and suspects
 * its nodes, since whatever may run there is unknown). An oarexec that does report meanwhile is
 * handled as usual: the states move once, whichever comes first. Anything else: it got further,
 * and its own path ends it (exit 1).
 */
async function lostLaunch(ctx: BipbipContext, job: Job): Promise<number> {
  const { sql, log, notifier } = ctx;
  const jobId = job.job_id;
  if (job.state === "toLaunch") return await launch(ctx, job);
  if (job.state !== "Launching") return 1;
  // -2: fragged already (oardel, sarko): the kill path is under way.
  if (await fragJob(sql, jobId, "oar") !== FragResult.ok) return 1;
  await setFragState(sql, jobId, "LEON_EXTERMINATE", "LEON");
  await addEvent(sql, {
    type: LOST_LAUNCH_EVENT,
    jobId,
    description: `[bipbip] job ${jobId} left in Launching by a launch that died; ` +
      `exterminated`,
  });
  log.warn("[{id}] left in Launching by a launch that died: exterminating it", { id: jobId });
  notifier.almighty("Qdel");
  return 0;
}

// ---------------------------------------------------------------------------------------------
// end-of-job mode (§4.2)

async function endOfJob(ctx: BipbipContext, job: Job, args: string[]): Promise<number> {
  const { sql, log } = ctx;
  const jobId = job.job_id;
  if (!stateIn(RUNNING_LIKE_STATES, job.state)) {
    // A late or duplicate report: the job already ended (or never started).
    log.warn("[{id}] report for a job in state {state}: ignored", { id: jobId, state: job.state });
    return 1;
  }
  const [exitArg, scriptArg = "N", ...rest] = args;
  if (!/^\d{1,9}$/.test(exitArg)) {
    log.error("[{id}] Bad argument: oarexec exit value {v}", { id: jobId, v: exitArg });
    return 2;
  }
  const got = rest.join("_");
  const expected = await challengeOf(sql, jobId);
  if (expected === null || got !== expected) {
    // Unlike the reference, the expected challenge is not written out: events are public.
    const desc = `Bad challenge from oarexec, perhaps a pirate attack??? (${got.slice(0, 64)}).`;
    log.error("[{id}] {desc}", { id: jobId, desc });
    await addEvent(sql, { type: "BIPBIP_CHALLENGE", jobId, description: desc });
    return 2;
  }
  const scriptExit = /^\d{1,10}$/.test(scriptArg) ? Number(scriptArg) : null;
  await checkEndOfJob(ctx, {
    jobId,
    scriptExit,
    error: Number(exitArg),
    hosts: await jobCurrentHosts(sql, jobId),
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------
// launch mode (§4.3)

async function launch(ctx: BipbipContext, job: Job): Promise<number> {
  const { sql, config, log, notifier } = ctx;
  const jobId = job.job_id;
  if (job.state !== "toLaunch") {
    log.warn("[{id}] Job already treated or deleted in the meantime", { id: jobId });
    return 1;
  }
  const challenge = await challengeOf(sql, jobId);
  if (challenge === null) {
    const msg = "the job has no challenge: it cannot be launched";
    log.error("[{id}] {msg}", { id: jobId, msg });
    await setJobState(sql, notifier, jobId, "Error", { message: msg });
    return 2;
  }
  if (!(await setJobState(sql, notifier, jobId, "Launching"))) {
    log.warn("[{id}] Job already treated or deleted in the meantime", { id: jobId });
    return 1;
  }
  // Interactive (non-reservation): oarsub hears how the launch goes (cli/oarsub/ and lib/job/launch_notify.ts).
  await tellOarsub(job, InteractiveMessages.starting);
  if (config.str("JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD") !== "") {
    log.warn("JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD is set but cpusets are not supported");
  }
  const types = await getJobTypes(sql, jobId);
  const hosts = await jobCurrentHosts(sql, jobId);
  const special = "deploy" in types || "cosystem" in types;

  // Node check (ssh launcher only).
  if (!special && hosts.length > 0 && ctx.launcher.kind === "ssh") {
    const bad = await (ctx.unreachable ?? ((h) => ctx.launcher.unreachable(h)))(hosts);
    if (bad.length > 0) {
      await setJobMessage(sql, jobId, "One or several nodes are not responding correctly");
      await addEvent(sql, {
        type: "PING_CHECKER_NODE_SUSPECTED",
        jobId,
        description: `[bipbip] OAR suspects nodes, job: ${jobId}, nodes:${bad.join(" ")}`,
        hosts: bad,
      });
      notifier.almighty("ChState");
      const reservation = job.reservation !== "None";
      await tellOarsub(job, InteractiveMessages.error("some resources did not respond"));
      if (!reservation) return 2;
      if (bad.length === hosts.length) {
        // docs/differences.md §8: the event is written and the reservation ends in Error.
        await addEvent(sql, {
          type: "RESERVATION_NO_NODE",
          jobId,
          description: `[bipbip] no node of reservation ${jobId} responds`,
        });
        await setJobState(sql, notifier, jobId, "Error", {
          message: "None of the reserved nodes responds",
        });
        return 2;
      }
      // A reservation starts on the nodes that answer.
      hosts.splice(0, hosts.length, ...hosts.filter((h) => !bad.includes(h)));
    }
  }

  // Server prologue, once, with the OAR_* environment (docs/differences.md §1).
  const prologue = config.str("SERVER_PROLOGUE_EXEC_FILE");
  if (prologue.trim() !== "") {
    const cmd = `${prologue} ${jobId}`;
    const r = await runServerScript(
      prologue,
      jobId,
      await serverScriptEnv(sql, job),
      config.int("SERVER_PROLOGUE_EPILOGUE_TIMEOUT"),
    );
    if (r.kind === "exit" || r.kind === "timeout") {
      const [type, desc] = r.kind === "exit"
        ? [
          "SERVER_PROLOGUE_EXIT_CODE_ERROR",
          `[bipbip] [${jobId}] Server prologue exit code: ${r.code} (!=0) (cmd: ${cmd})`,
        ]
        : [
          "SERVER_PROLOGUE_TIMEOUT",
          `[bipbip] [${jobId}] Server prologue timeouted (cmd: ${cmd})`,
        ];
      log.error(desc);
      await setJobMessage(sql, jobId, "Server prologue failed: the job is not launched");
      await tellOarsub(
        job,
        InteractiveMessages.error(
          r.kind === "exit" ? "SERVER PROLOGUE returned a bad value" : "SERVER PROLOGUE timeouted",
        ),
      );
      await addEvent(sql, { type, jobId, description: desc });
      notifier.almighty("ChState");
      return 2;
    }
    if (r.kind === "unrunnable") log.error("Cannot run: {cmd} ({error})", { cmd, error: r.error });
  }

  if ("noop" in types) {
    await setJobState(sql, notifier, jobId, "Running");
    log.info("[{id}] noop job: Running without oarexec", { id: jobId });
    return 0;
  }

  const head = headHostOf(config, types, hosts);
  const descriptor = await buildDescriptor(ctx, job, types, challenge, head);
  log.info("[{id}] launching oarexec on {head} ({kind})", {
    id: jobId,
    head,
    kind: ctx.launcher.kind,
  });
  const r = await ctx.launcher.launch(head, encodeOarexecDescriptor(descriptor));
  if (r.rendezvous) {
    await setJobState(sql, notifier, jobId, "Running");
    await announceStart(ctx, job);
    return 0;
  }
  await launchFailed(ctx, job, head, hosts, r);
  return 0;
}

/** oarexec did not start the job: its end, with oarexec's early exit code when known. */
export async function launchFailed(
  ctx: BipbipContext,
  job: Job,
  head: string,
  hosts: string[],
  r: LaunchResult,
): Promise<void> {
  await tellOarsub(job, InteractiveMessages.error("an error occured on the first job node"));
  const error = r.exitCode !== null && EARLY_EXITS.has(r.exitCode)
    ? r.exitCode
    : OarexecExit.noRendezvous;
  ctx.log.error(
    "[{id}] oarexec on {head} did not start the job (exit {code}, error {error}): {out}",
    {
      id: job.job_id,
      head,
      code: r.exitCode ?? "none",
      error,
      out: r.output.trim().slice(0, 2000),
    },
  );
  await checkEndOfJob(ctx, {
    jobId: job.job_id,
    scriptExit: null,
    error,
    hosts: hosts.length ? hosts : [head],
  });
}

/**
 * Where oarexec sends its report: the server as the head node can reach it (a loopback name
 * only reaches it from this host: the local launcher's, OAREXEC_LOCAL_HOSTS included).
 */
function almightyHost(ctx: BipbipContext, head: string): string {
  const server = ctx.config.str("SERVER_HOSTNAME");
  if (ctx.launcher.kind !== "ssh" || !/^(localhost|127\.)/.test(server)) return server;
  if (localHosts(ctx.config).has(head)) return server;
  try {
    return (ctx.hostname ?? Deno.hostname)();
  } catch {
    return server;
  }
}

async function buildDescriptor(
  ctx: BipbipContext,
  job: Job,
  types: JobTypes,
  challenge: string,
  head: string,
): Promise<OarexecDescriptor> {
  const { sql } = ctx;
  const resources = await sql<Record<string, unknown>[]>`
    SELECT r.* FROM resources r
    JOIN assigned_resources ar ON ar.resource_id = r.resource_id
    WHERE ar.moldable_job_id = ${job.assigned_moldable_job}
      AND ar.assigned_resource_index = 'CURRENT'
    ORDER BY r.resource_id`;
  const walltime = await sql<{ w: number }[]>`
    SELECT moldable_walltime AS w FROM moldable_job_descriptions
    WHERE moldable_id = ${job.assigned_moldable_job}`;
  const seconds = walltime.length ? Number(walltime[0].w) : 0;
  return descriptorOf(ctx, { job, types, challenge, head, resources, walltime: seconds });
}

/** What oarexec gets to run a job, from what was read about it. */
export function descriptorOf(
  ctx: BipbipContext,
  j: {
    job: Job;
    types: JobTypes;
    challenge: string;
    head: string;
    /** `resources` rows of the job's CURRENT assignment, in resource id order. */
    resources: Record<string, unknown>[];
    walltime: number;
  },
): OarexecDescriptor {
  const { config } = ctx;
  const { job, types, challenge, head, resources } = j;
  const id = String(job.job_id);
  return {
    job_id: job.job_id,
    array_id: job.array_id,
    array_index: job.array_index,
    stdout_file: (job.stdout_file ?? "OAR.%jobid%.stdout").replaceAll("%jobid%", id),
    stderr_file: (job.stderr_file ?? "OAR.%jobid%.stderr").replaceAll("%jobid%", id),
    launching_directory: job.launching_directory,
    job_env: job.job_env,
    node_file_db_fields: config.str("NODE_FILE_DB_FIELD"),
    node_file_db_fields_distinct_values: config.str("NODE_FILE_DB_FIELD_DISTINCT_VALUES"),
    user: job.job_user,
    job_user: job.job_user,
    types: types as Record<string, unknown>,
    name: job.job_name,
    project: job.project ?? "",
    reservation: job.reservation,
    walltime_seconds: j.walltime,
    command: job.command ?? "",
    challenge,
    almighty_hostname: almightyHost(ctx, head),
    almighty_port: config.int("SERVER_PORT"),
    checkpoint_signal: job.checkpoint_signal ?? 12,
    debug_mode: config.int("OAREXEC_DEBUG_MODE"),
    mode: job.job_type,
    pro_epi_timeout: config.int("PROLOGUE_EPILOGUE_TIMEOUT"),
    prologue: config.str("PROLOGUE_EXEC_FILE"),
    epilogue: config.str("EPILOGUE_EXEC_FILE"),
    tmp_directory: config.str("OAREXEC_DIRECTORY"),
    detach_oarexec: config.int("DETACH_JOB_FROM_SERVER"),
    cpuset_full_path: "",
    resources: resources.map((r) => ({ ...r, resource_id: Number(r.resource_id) })),
    report_ack_timeout: config.int("OAREXEC_REPORT_ACK_TIMEOUT"),
  };
}
