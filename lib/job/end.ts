/**
 * The end of a job (docs/modules.md §5): `check_end_of_job` turns oarexec's exit code into the
 * job's Finishing state, its exit code and the events NodeChangeState acts on (§5.1, with
 * docs/differences.md §13); the finishing sequence runs the server epilogue, the optional node
 * check at job end and records the events (§5.2). Also the server prologue/epilogue runner bipbip
 * uses (§4.4).
 *
 * Not done: cpuset cleaning through a job resource manager (no TakTuk here); the launch never
 * sets cpusets up either.
 */
import type { Config } from "../runtime/config.ts";
import type { Queryable } from "../db/client.ts";
import { eventExists, insertEvent, inTransaction, type NewEvent } from "./events.ts";
import {
  getJob,
  getJobTypes,
  type Job,
  jobCurrentHosts,
  setFinishDate,
  setJobExitCode,
  setJobState,
} from "./jobs.ts";
import { RUNNING_LIKE_STATES, stateIn } from "./states.ts";
import type { Logger } from "../runtime/log.ts";
import type { Notifier } from "../transport/notifier.ts";
import { ResubmitCode, resubmitJob } from "./resubmit.ts";

export interface JobEndContext {
  sql: Queryable;
  config: Config;
  log: Logger;
  notifier: Notifier;
  /** The node check (ACTIVATE_PINGCHECKER_AT_JOB_END): the hosts that do not answer. */
  unreachable?: (hosts: string[]) => Promise<string[]>;
}

// ---------------------------------------------------------------------------------------------
// server prologue / epilogue

export type ScriptResult =
  | { kind: "none" }
  | { kind: "ok" }
  | { kind: "exit"; code: number }
  | { kind: "timeout" }
  | { kind: "unrunnable"; error: string };

/**
 * Runs `[file, job_id]` (no shell) with exactly `env`, within `timeoutSec`; a script over its
 * time is killed (TERM, then KILL 5 s later).
 */
export async function runServerScript(
  file: string,
  jobId: number,
  env: Record<string, string>,
  timeoutSec: number,
): Promise<ScriptResult> {
  if (file.trim() === "") return { kind: "none" };
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(file.trim(), {
      args: [String(jobId)],
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    return { kind: "unrunnable", error: String((e as Error)?.message ?? e) };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    child.status,
    new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutSec * 1000))),
  ]);
  clearTimeout(timer);
  if (status === null) {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const hard = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(hard);
    return { kind: "timeout" };
  }
  if (status.success) return { kind: "ok" };
  return { kind: "exit", code: status.signal ? 128 : status.code };
}

/** `OAR_JOB_TYPES`: `k=v` joined by `;`, a bare type as `k=1` (docs/modules.md §4.3 step 8). */
export async function jobTypesText(sql: Queryable, jobId: number): Promise<string> {
  const rows = await sql<{ type: string }[]>`
    SELECT type FROM job_types WHERE job_id = ${jobId} ORDER BY job_type_id`;
  return rows.map((r) => (r.type.includes("=") ? r.type : `${r.type}=1`)).join(";");
}

/** The moldable walltime the job runs with (its assigned moldable, else its first). */
export async function jobWalltime(sql: Queryable, job: Job): Promise<number> {
  const rows = await sql<{ moldable_walltime: number }[]>`
    SELECT moldable_walltime FROM moldable_job_descriptions
    WHERE moldable_job_id = ${job.job_id}
    ORDER BY (moldable_id = ${job.assigned_moldable_job}) DESC, moldable_id
    LIMIT 1`;
  return rows.length ? Number(rows[0].moldable_walltime) : 0;
}

/** The environment of the server prologue and epilogue (and nothing else of ours). */
export async function serverScriptEnv(sql: Queryable, job: Job): Promise<Record<string, string>> {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    OAR_JOB_ID: String(job.job_id),
    OAR_JOB_ARRAY_ID: String(job.array_id),
    OAR_ARRAY_INDEX: String(job.array_index),
    OAR_USER: job.job_user,
    OAR_JOB_NAME: job.job_name ?? "",
    OAR_JOB_WALLTIME_SECONDS: String(await jobWalltime(sql, job)),
    OAR_JOB_COMMAND: job.command ?? "",
    OAR_JOB_TYPES: await jobTypesText(sql, job.job_id),
  };
}

// ---------------------------------------------------------------------------------------------
// check_end_of_job

export interface EndOfJob {
  jobId: number;
  /** Raw wait status of the user command; null for `N`. */
  scriptExit: number | null;
  /** oarexec's exit code, or 50 when it could not be launched. */
  error: number;
  /** The job's hosts, head node first. */
  hosts: string[];
}

export interface EndEvents {
  events: NewEvent[];
  /** Notify almighty `Term` (a normal end). */
  term: boolean;
  /** Exit 3 of a job that may need resubmitting (besteffort + idempotent). */
  killed: boolean;
}

/** The §5.1 table (with docs/differences.md §13 for 4 and 10). */
export function endOfJobEvents(
  error: number,
  job: Pick<Job, "job_id" | "job_user" | "launching_directory">,
  hosts: string[],
  oarexecDirectory: string,
): EndEvents {
  const id = job.job_id;
  const p = `[${id}] `;
  const head = hosts[0] ?? "(no host)";
  const dir = job.launching_directory;
  const ev = (type: string, description: string): NewEvent => ({ type, jobId: id, description });
  const terminate = ev("SWITCH_INTO_TERMINATE_STATE", p + "Ask to change the job state");
  const toError = ev("SWITCH_INTO_ERROR_STATE", p + "Ask to change the job state");
  const r = (events: NewEvent[], term = false, killed = false): EndEvents => ({
    events,
    term,
    killed,
  });
  switch (error) {
    case 0:
      return r([terminate], true);
    case 1:
      return r([ev("PROLOGUE_ERROR", p + "error of oarexec prologue")]);
    case 2:
      return r([ev("EPILOGUE_ERROR", p + "error of oarexec epilogue")]);
    case 3:
      return r([toError], false, true);
    case 4: {
      const w = p + "The job was killed by Leon AND epilogue is in error";
      return r([toError, ev("EPILOGUE_ERROR", w)], false, true);
    }
    case 5:
      return r([ev("CANNOT_WRITE_NODE_FILE", p + "oarexec cannot create the node file")]);
    case 6:
      return r([ev("CANNOT_WRITE_PID_FILE", p + "oarexec cannot create its pid file")]);
    case 7:
      return r([
        ev("USER_SHELL", p + `Cannot get shell of user ${job.job_user}, so I suspect node ${head}`),
      ]);
    case 9:
      // The job's own user is refused (root, a system account): the job's fault, not the node's.
      return r([
        toError,
        ev("USER_NOT_ALLOWED", p + `oarexec on ${head} refuses to run a job of ${job.job_user}`),
      ]);
    case 8:
      return r([
        ev(
          "CANNOT_CREATE_TMP_DIRECTORY",
          p + `oarexec cannot create tmp directory on ${head}: ${oarexecDirectory}`,
        ),
      ]);
    case 10:
      return r([
        toError,
        ev(
          "WORKING_DIRECTORY",
          p + `Cannot go into the working directory ${dir} of the job on node ${head}`,
        ),
      ]);
    case 12: {
      const w = p +
        `Cannot go into the working directory ${dir} of the job on node ${head} AND epilogue is in error`;
      return r([toError, ev("WORKING_DIRECTORY", w), ev("EPILOGUE_ERROR", w)]);
    }
    case 20:
      return r([
        toError,
        ev(
          "OUTPUT_FILES",
          p + `Cannot create .stdout and .stderr files in ${dir} on the node ${head}`,
        ),
      ]);
    case 22: {
      const w = p + "Cannot create STDOUT and STDERR files AND epilogue is in error";
      return r([toError, ev("OUTPUT_FILES", w), ev("EPILOGUE_ERROR", w)]);
    }
    case 30:
      return r([ev("SSH_TRANSFER_TIMEOUT", p + `Timeout SSH hashtable transfer on ${head}`)]);
    case 31:
      return r([ev("BAD_HASHTABLE_DUMP", p + `Bad hashtable dump on ${head}`)]);
    case 33:
      return r([
        terminate,
        ev(
          "EPILOGUE_ERROR",
          p + "oarexec received a SIGUSR1 signal and there was an epilogue error",
        ),
      ]);
    case 34:
    case 40:
    case 42:
      return r([terminate], true);
    case 41:
      return r([
        terminate,
        ev(
          "EPILOGUE_ERROR",
          p + "oarexec received a SIGUSR2 signal and there was an epilogue error; " +
            "so user process has received a checkpoint signal",
        ),
      ], true);
    case 50:
      return r([
        ev(
          "LAUNCHING_OAREXEC_TIMEOUT",
          p + `launching oarexec timeout, exit value = ${error}; the job ${id} is in Error ` +
            `and the node ${head} is Suspected`,
        ),
      ]);
    default:
      return r([
        ev(
          "EXIT_VALUE_OAREXEC",
          p + `Error of oarexec, exit value = ${error}; the job is in Error and the node ` +
            `${head} is Suspected; If this job is of type cosystem or deploy, check if the oar ` +
            `server is able to connect to the corresponding nodes, oar-node started`,
        ),
      ]);
  }
}

/**
 * `check_end_of_job` (docs/modules.md §5.1). Returns false when the job was no longer running
 * (already killed or terminated: nothing is changed, almighty still gets `BipBip`).
 */
export async function checkEndOfJob(ctx: JobEndContext, end: EndOfJob): Promise<boolean> {
  const { sql, log, notifier } = ctx;
  const job = await getJob(sql, end.jobId);
  let handled = false;
  let term = false;
  if (job && stateIn(RUNNING_LIKE_STATES, job.state)) {
    await setFinishDate(sql, end.jobId);
    // setJobState is the arbiter: a concurrent writer (leon exterminating) may have won.
    handled = await setJobState(sql, notifier, end.jobId, "Finishing");
  }
  if (!handled) {
    log.info("[{id}] previously killed or Terminated: end of job ignored", { id: end.jobId });
  } else {
    if (end.scriptExit !== null) await setJobExitCode(sql, end.jobId, end.scriptExit);
    const r = endOfJobEvents(end.error, job!, end.hosts, ctx.config.str("OAREXEC_DIRECTORY"));
    if (r.killed) r.events.push(...await besteffortResubmission(ctx, end.jobId));
    term = r.term;
    await jobFinishingSequence(ctx, end.jobId, r.events);
  }
  if (term) notifier.almighty("Term");
  notifier.almighty("BipBip");
  return handled;
}

/**
 * Exit 3 of a besteffort + idempotent job that the scheduler killed (a BESTEFFORT_KILL event):
 * the job is resubmitted (at most once: lib/job/resubmit.ts refuses a second copy), and the event
 * RESUBMIT_JOB_AUTOMATICALLY names the new job.
 */
async function besteffortResubmission(ctx: JobEndContext, jobId: number): Promise<NewEvent[]> {
  const types = await getJobTypes(ctx.sql, jobId);
  if (!("besteffort" in types) || !("idempotent" in types)) return [];
  if (!(await eventExists(ctx.sql, jobId, "BESTEFFORT_KILL"))) return [];
  const r = await resubmitJob(ctx.sql, jobId, "oar");
  if (r.code !== ResubmitCode.ok) {
    ctx.log.warn("[{id}] cannot resubmit the besteffort idempotent job: {msg}", {
      id: jobId,
      msg: r.message,
    });
    return [];
  }
  ctx.log.warn("[{id}] resubmitted as {newId}: a besteffort and idempotent job", {
    id: jobId,
    newId: r.newJobId,
  });
  return [{
    type: "RESUBMIT_JOB_AUTOMATICALLY",
    jobId,
    description: `[${jobId}] The job ${jobId} is a besteffort and idempotent job so we ` +
      `resubmit it (new id = ${r.newJobId})`,
  }];
}

// ---------------------------------------------------------------------------------------------
// job_finishing_sequence

/** `job_finishing_sequence` (docs/modules.md §5.2). */
export async function jobFinishingSequence(
  ctx: JobEndContext,
  jobId: number,
  events: NewEvent[],
): Promise<void> {
  const { sql, config, log } = ctx;
  const all = [...events];
  const epilogue = config.str("SERVER_EPILOGUE_EXEC_FILE");
  const job = await getJob(sql, jobId);
  if (epilogue.trim() !== "" && job) {
    const cmd = `${epilogue} ${jobId}`;
    const r = await runServerScript(
      epilogue,
      jobId,
      await serverScriptEnv(sql, job),
      config.int("SERVER_PROLOGUE_EPILOGUE_TIMEOUT"),
    );
    if (r.kind === "exit") {
      const msg =
        `[JOB FINISHING SEQUENCE] Server epilogue exit code: ${r.code} (!=0) (cmd: ${cmd})`;
      log.error(msg);
      all.push({ type: "SERVER_EPILOGUE_EXIT_CODE_ERROR", jobId, description: msg });
    } else if (r.kind === "timeout") {
      const msg = `[JOB FINISHING SEQUENCE] Server epilogue timeouted (cmd: ${cmd})`;
      log.error(msg);
      all.push({ type: "SERVER_EPILOGUE_TIMEOUT", jobId, description: msg });
    } else if (r.kind === "unrunnable") {
      log.error("Cannot run: {cmd} ({error})", { cmd, error: r.error });
    }
  }
  if (config.bool("ACTIVATE_PINGCHECKER_AT_JOB_END") && ctx.unreachable) {
    const types = await getJobTypes(sql, jobId);
    if (!("deploy" in types) && !("noop" in types)) {
      const hosts = await jobCurrentHosts(sql, jobId);
      const bad = hosts.length ? await ctx.unreachable(hosts) : [];
      if (bad.length > 0) {
        all.push({
          type: "PING_CHECKER_NODE_SUSPECTED_END_JOB",
          jobId,
          description: `[JOB FINISHING SEQUENCE] OAR suspects nodes for the job ${jobId}: ` +
            bad.join(" "),
          hosts: bad,
        });
      }
    }
  }
  if (all.length === 0) return;
  await inTransaction(sql, async (tx) => {
    for (const e of all) await insertEvent(tx, e);
  });
  ctx.notifier.almighty("ChState");
}
