/**
 * NodeChangeState (docs/modules.md §9): acts on the events other modules wrote (job end states,
 * node suspicion, automatic resubmission, hold/suspend/resume), then applies the resources' pending
 * next_state, then feeds the newly Suspected resources to the healing script. Returns the
 * module's exit code: 0 nothing for the scheduler, 1 nodes or resources changed, 2 jobs were
 * fragged (Leon must run).
 *
 * Differences from OAR 3: event-driven suspicion only touches Alive nodes (or nodes Suspected by
 * Finaud) (docs/differences.md §3, in setNodeState); HOLD_RUNNING_JOB suspends a Running job and
 * HOLD_WAITING_JOB only holds Waiting ones (§7); suspension stops the job's processes through
 * oarexec; "the first node" is the head node (§15); a job created by an automatic resubmission
 * is not resubmitted automatically again (user-reported issue #149); the healing script runs.
 */
import type { Config } from "../../lib/runtime/config.ts";
import type { Sql } from "../../lib/db/client.ts";
import {
  addEvent,
  checkEvent,
  eventExists,
  type EventRow,
  inTransaction,
  toCheckEvents,
} from "../../lib/job/events.ts";
import { fragJob, FragResult } from "../../lib/job/frag.ts";
import {
  getJob,
  getJobTypes,
  type Job,
  jobHostsForLog,
  setJobsState,
  setJobState,
} from "../../lib/job/jobs.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import type { Notifier } from "../../lib/transport/notifier.ts";
import type { AlmightyCommand, CommanderMessage } from "../../lib/protocol/mod.ts";
import type { OarexecSignaller } from "../../lib/launch/oarexec_signal.ts";
import {
  resourcesToChange,
  setNodeState,
  setResourceNextState,
  setResourceState,
} from "../../lib/resource/resources.ts";
import { resubmissionCount, ResubmitCode, resubmitJob } from "../../lib/job/resubmit.ts";
import { headHost } from "../../lib/job/head_host.ts";
import { FINAL_STATES, type JobState } from "../../lib/job/states.ts";
import { notifyOarsub, type OarsubNotify } from "../../lib/job/oarsub_notify.ts";
import { runTimedCommand } from "../../lib/runtime/timed_command.ts";

export interface NodeChangeStateContext {
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  /** Stops the processes of a job being suspended. */
  signaller: OarexecSignaller;
  /** Sends lines to an interactive oarsub (`host:port`); `notifyOarsub` (TCP) by default. */
  notifyOarsub?: OarsubNotify;
}

/** The account NodeChangeState acts as (frag, resubmission). */
const NCS_USER = "oar";

/** Events that put the job in Error (rule 3). */
export const ERROR_EVENTS: ReadonlySet<string> = new Set([
  "PING_CHECKER_NODE_SUSPECTED",
  "CPUSET_ERROR",
  "PROLOGUE_ERROR",
  "CANNOT_WRITE_NODE_FILE",
  "CANNOT_WRITE_PID_FILE",
  "USER_SHELL",
  "EXTERMINATE_JOB",
  "CANNOT_CREATE_TMP_DIRECTORY",
  "LAUNCHING_OAREXEC_TIMEOUT",
  "RESERVATION_NO_NODE",
  "BAD_HASHTABLE_DUMP",
  "SSH_TRANSFER_TIMEOUT",
  "EXIT_VALUE_OAREXEC",
]);

/** Events whose nodes are suspected (rule 5). */
const SUSPECT_EVENTS: ReadonlySet<string> = new Set([
  "PING_CHECKER_NODE_SUSPECTED",
  "PING_CHECKER_NODE_SUSPECTED_END_JOB",
  "CPUSET_ERROR",
  "CPUSET_CLEAN_ERROR",
  "SUSPEND_ERROR",
  "RESUME_ERROR",
  "PROLOGUE_ERROR",
  "EPILOGUE_ERROR",
  "CANNOT_WRITE_NODE_FILE",
  "CANNOT_WRITE_PID_FILE",
  "USER_SHELL",
  "EXTERMINATE_JOB",
  "CANNOT_CREATE_TMP_DIRECTORY",
  "SSH_TRANSFER_TIMEOUT",
  "BAD_HASHTABLE_DUMP",
  "LAUNCHING_OAREXEC_TIMEOUT",
  "EXIT_VALUE_OAREXEC",
  "FORCE_TERMINATE_FINISHING_JOB",
]);
/** ... whose hosts are the event's own, as reported by the node check (finaud tag YES). */
const PING_EVENTS: ReadonlySet<string> = new Set([
  "PING_CHECKER_NODE_SUSPECTED",
  "PING_CHECKER_NODE_SUSPECTED_END_JOB",
]);
/** ... whose hosts are the event's own (tag NO). */
const HOSTED_EVENTS: ReadonlySet<string> = new Set([
  "CPUSET_ERROR",
  "CPUSET_CLEAN_ERROR",
  "SUSPEND_ERROR",
  "RESUME_ERROR",
]);
/** ... whose hosts are all the job's hosts; the other events suspect the head node only. */
const ALL_HOSTS_EVENTS: ReadonlySet<string> = new Set([
  "EXTERMINATE_JOB",
  "PROLOGUE_ERROR",
  "EPILOGUE_ERROR",
  "CPUSET_ERROR",
  "CPUSET_CLEAN_ERROR",
  "FORCE_TERMINATE_FINISHING_JOB",
]);

/** Server prologue/epilogue failures: scheduling stops until the admin re-enables it. */
const ADMIN_SCRIPT_EVENTS: ReadonlySet<string> = new Set([
  "SERVER_PROLOGUE_TIMEOUT",
  "SERVER_PROLOGUE_EXIT_CODE_ERROR",
  "SERVER_EPILOGUE_TIMEOUT",
  "SERVER_EPILOGUE_EXIT_CODE_ERROR",
]);

/** Events after which a batch job is submitted again (rule 7). */
const RESUBMIT_EVENTS: ReadonlySet<string> = new Set([
  "SERVER_PROLOGUE_TIMEOUT",
  "SERVER_PROLOGUE_EXIT_CODE_ERROR",
  "SERVER_EPILOGUE_TIMEOUT",
  "PING_CHECKER_NODE_SUSPECTED",
  "CPUSET_ERROR",
  "PROLOGUE_ERROR",
  "CANNOT_WRITE_NODE_FILE",
  "CANNOT_WRITE_PID_FILE",
  "USER_SHELL",
  "CANNOT_CREATE_TMP_DIRECTORY",
  "LAUNCHING_OAREXEC_TIMEOUT",
]);

/** What one run accumulates. */
interface RunState {
  exitCode: number;
  /** "<resource_id> <host>" lines for the healing script. */
  toHeal: string[];
}

export async function runNodeChangeState(ctx: NodeChangeStateContext): Promise<number> {
  const run: RunState = { exitCode: 0, toHeal: [] };
  // The jobs this run ends ask almighty for ChState, that is for another run of this module:
  // worth it only when this run leaves events to check (it wrote some); otherwise each run
  // that ended jobs was followed by one that found nothing to do.
  const own = new OwnChState(ctx.notifier);
  const inner = { ...ctx, notifier: own };
  await eventPass(inner, run);
  await nextStatePass(inner, run);
  await heal(inner, run.toHeal);
  if (own.wanted) {
    const [{ left }] = await ctx.sql<{ left: boolean }[]>`
      SELECT EXISTS (SELECT 1 FROM event_logs WHERE to_check = 'YES') AS left`;
    if (left) ctx.notifier.almighty("ChState");
  }
  return run.exitCode;
}

/** Forwards every notification but ChState, which it only records. */
class OwnChState implements Notifier {
  wanted = false;
  constructor(readonly inner: Notifier) {}
  almighty(cmd: AlmightyCommand): void {
    if (cmd === "ChState") this.wanted = true;
    else this.inner.almighty(cmd);
  }
  commander(msg: CommanderMessage): void {
    this.inner.commander(msg);
  }
}

function raise(run: RunState, code: number): void {
  run.exitCode = Math.max(run.exitCode, code);
}

// ---------------------------------------------------------------------------------------------
// Event pass (§9.1)

async function eventPass(ctx: NodeChangeStateContext, run: RunState): Promise<void> {
  // A snapshot: events written while we work are seen next run. Marking an event checked marks
  // every unchecked one of the same (type, job), so a burst is acted on once.
  const handled = new Set<string>();
  const events = await toCheckEvents(ctx.sql);
  for (const id of await terminateInBulk(ctx, events)) {
    handled.add(`SWITCH_INTO_TERMINATE_STATE\0${id}`);
  }
  for (const e of events) {
    const key = `${e.type}\0${e.job_id}`;
    if (handled.has(key)) continue;
    handled.add(key);
    const job = e.job_id !== 0 ? await getJob(ctx.sql, e.job_id) : null;
    if (e.job_id !== 0 && job === null) {
      ctx.log.warn("event {id} ({type}) is about job {job}, which does not exist", {
        id: e.event_id,
        type: e.type,
        job: e.job_id,
      });
    } else {
      ctx.log.debug("event {id} {type} for job {job}", {
        id: e.event_id,
        type: e.type,
        job: e.job_id,
      });
      await handleEvent(ctx, run, e, job);
    }
    await checkEvent(ctx.sql, e.type, e.job_id);
  }
}

/**
 * The common case of a busy cluster, in set-based statements instead of a few per job: jobs
 * whose only pending event is SWITCH_INTO_TERMINATE_STATE and that need no resubmission (the
 * exit code 99 of an idempotent job) become Terminated together, and their events are marked
 * checked. What handleEvent would do for each, in one transaction. Returns the jobs handled;
 * every other event goes through handleEvent, one by one, in order.
 */
async function terminateInBulk(
  ctx: NodeChangeStateContext,
  events: readonly EventRow[],
): Promise<number[]> {
  // Per job: whether all its pending events are terminations.
  const onlyTerminations = new Map<number, boolean>();
  for (const e of events) {
    if (e.job_id === 0) continue;
    const plain = e.type === "SWITCH_INTO_TERMINATE_STATE";
    onlyTerminations.set(e.job_id, (onlyTerminations.get(e.job_id) ?? true) && plain);
  }
  const candidates = [...onlyTerminations].filter(([, only]) => only).map(([id]) => id);
  if (candidates.length < 2) return [];
  const ids = "{" + candidates.join(",") + "}";
  const plain = (await ctx.sql<{ job_id: number }[]>`
    SELECT job_id FROM jobs
    WHERE job_id = ANY(${ids}::int[])
      AND (exit_code IS NULL OR (exit_code >> 8) <> 99)`).map((r) => Number(r.job_id));
  if (plain.length === 0) return [];
  const plainText = "{" + plain.join(",") + "}";
  await inTransaction(ctx.sql, async (tx) => {
    await setJobsState(tx, ctx.notifier, plain, "Terminated");
    await tx`
      UPDATE event_logs SET to_check = 'NO'
      WHERE type = 'SWITCH_INTO_TERMINATE_STATE' AND job_id = ANY(${plainText}::int[])
        AND to_check = 'YES'`;
  });
  ctx.log.debug("{n} jobs Terminated together", { n: plain.length });
  return plain;
}

async function setState(ctx: NodeChangeStateContext, job: Job | null, state: JobState) {
  if (job === null) return false;
  return await setJobState(ctx.sql, ctx.notifier, job.job_id, state);
}

async function handleEvent(
  ctx: NodeChangeStateContext,
  run: RunState,
  e: EventRow,
  job: Job | null,
): Promise<void> {
  const t = e.type;

  // 1. Idempotent jobs that exit with 99 after more than a minute are submitted again.
  if (
    job && (t === "SWITCH_INTO_TERMINATE_STATE" || t === "SWITCH_INTO_ERROR_STATE") &&
    job.exit_code !== null && (job.exit_code >> 8) === 99
  ) await resubmitIdempotent(ctx, job);

  // 2. Explicit end states.
  if (t === "SWITCH_INTO_TERMINATE_STATE") await setState(ctx, job, "Terminated");
  else if (t === "SWITCH_INTO_ERROR_STATE" || t === "FORCE_TERMINATE_FINISHING_JOB") {
    await setState(ctx, job, "Error");
  }

  // 3. Launch and execution failures; a reservation keeps running on its other nodes when
  // only some of them failed the ping or the cpuset setup.
  if (ERROR_EVENTS.has(t) && job) {
    const partialReservationFailure = job.reservation !== "None" &&
      job.assigned_moldable_job !== 0 &&
      (t === "PING_CHECKER_NODE_SUSPECTED" || t === "CPUSET_ERROR");
    if (!partialReservationFailure) await setState(ctx, job, "Error");
  }

  // 4. The job did run; it ends now so that nothing else lands on nodes about to be Suspected.
  if (t === "CPUSET_CLEAN_ERROR" || t === "EPILOGUE_ERROR") await setState(ctx, job, "Terminated");

  // 5. Suspect nodes.
  if (SUSPECT_EVENTS.has(t)) await suspectNodes(ctx, run, e, job);

  // 6. A server prologue/epilogue failed: stop all queues until the admin looks.
  if (ADMIN_SCRIPT_EVENTS.has(t)) {
    const r = await ctx.sql`UPDATE queues SET state = 'notActive' WHERE state <> 'notActive'`;
    ctx.log.error(
      "server admin script error ({type}): {n} queue(s) stopped; fix it and run `oarnotify -E`",
      { type: t, n: r.count },
    );
    await setState(ctx, job, "Error");
  }

  // 7. Automatic resubmission.
  if (RESUBMIT_EVENTS.has(t) && job) await resubmitAfterFailure(ctx, job, t);

  // 8. Hold, suspend, resume.
  if ((t === "HOLD_WAITING_JOB" || t === "HOLD_RUNNING_JOB" || t === "RESUME_JOB") && job) {
    raise(run, await holdOrResume(ctx, t, job));
  }

  // 9. The user's notification of a deletion request (mail/exec) is not done by us.
  if (t === "FRAG_JOB_REQUEST" && job) {
    ctx.log.info("job {id}: deletion requested ({description})", {
      id: job.job_id,
      description: e.description,
    });
  }
}

async function resubmitIdempotent(ctx: NodeChangeStateContext, job: Job): Promise<void> {
  const id = job.job_id;
  const types = await getJobTypes(ctx.sql, id);
  if (
    !("idempotent" in types) || job.reservation !== "None" || job.job_type !== "PASSIVE" ||
    job.stop_time - job.start_time <= 60 ||
    await resubmissionCount(ctx.sql, id) > 0 ||
    await eventExists(ctx.sql, id, "SEND_KILL_JOB")
  ) return;
  const r = await resubmitJob(ctx.sql, id, NCS_USER);
  if (r.code === ResubmitCode.ok) {
    ctx.log.warn(
      "resubmitting job {id} => {newId} (type idempotent & exit code 99 & duration > 60 s)",
      { id, newId: r.newJobId },
    );
    ctx.notifier.almighty("Qsub");
  } else if (r.code !== ResubmitCode.alreadyResubmitted) {
    ctx.log.error("cannot resubmit job {id}: {message}", { id, message: r.message });
  }
}

/**
 * Rule 7. At most once per job, and never for a job that itself came from an automatic
 * resubmission: a failure that follows the job from node to node must not suspect the whole
 * cluster one resubmission at a time (oar3 issue #149).
 */
async function resubmitAfterFailure(
  ctx: NodeChangeStateContext,
  job: Job,
  type: string,
): Promise<void> {
  const id = job.job_id;
  if (job.reservation !== "None" || job.job_type !== "PASSIVE") return;
  if (await resubmissionCount(ctx.sql, id) > 0) return;
  if (
    job.resubmit_job_id !== 0 &&
    await eventExists(ctx.sql, job.resubmit_job_id, "RESUBMIT_JOB_AUTOMATICALLY")
  ) {
    ctx.log.warn(
      "job {id} ({type}) is already an automatic resubmission of job {parent}: not " +
        "resubmitted again",
      { id, type, parent: job.resubmit_job_id },
    );
    return;
  }
  const r = await resubmitJob(ctx.sql, id, NCS_USER);
  if (r.code !== ResubmitCode.ok) {
    if (r.code !== ResubmitCode.alreadyResubmitted) {
      ctx.log.error("cannot resubmit job {id}: {message}", { id, message: r.message });
    }
    return;
  }
  const msg = `Resubmitting job ${id} => ${r.newJobId} (due to event ${type} & job is neither a ` +
    `reservation nor an interactive job)`;
  ctx.log.warn(msg);
  await addEvent(ctx.sql, { type: "RESUBMIT_JOB_AUTOMATICALLY", jobId: id, description: msg });
  ctx.notifier.almighty("Qsub");
}

/** Rule 5: the hosts an event accuses, Suspected (when Alive or Suspected by Finaud). */
async function suspectNodes(
  ctx: NodeChangeStateContext,
  run: RunState,
  e: EventRow,
  job: Job | null,
): Promise<void> {
  const t = e.type;
  let hosts: string[];
  let tag: "YES" | "NO" = "NO";
  if (PING_EVENTS.has(t)) {
    hosts = e.hostnames;
    tag = "YES";
  } else if (HOSTED_EVENTS.has(t)) {
    hosts = e.hostnames;
  } else {
    hosts = job ? await jobHostsForLog(ctx.sql, job.job_id) : [];
    if (!ALL_HOSTS_EVENTS.has(t)) hosts = hosts.slice(0, 1);
    else if (t === "EXTERMINATE_JOB" && ctx.config.str("JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD")) {
      // The cpuset clean that follows reports the nodes that really are dead.
      hosts = [];
    }
    await addEvent(ctx.sql, { type: "LOG_SUSPECTED", jobId: 0, description: e.description, hosts });
  }
  const distinct = [...new Set(hosts.filter((h) => h !== ""))];
  if (distinct.length === 0) return;
  const suspected: string[] = [];
  for (const host of distinct) {
    const ids = await setNodeState(ctx.sql, host, "Suspected", tag);
    if (ids.length === 0) continue;
    suspected.push(host);
    for (const rid of ids) run.toHeal.push(`${rid} ${host}`);
  }
  if (suspected.length > 0) {
    raise(run, 1);
    ctx.log.warn("set nodes to Suspected after error {type}: {hosts}", {
      type: t,
      hosts: suspected.join(","),
    });
  }
}

/** Rule 8 (docs/differences.md §7). Returns the exit code it calls for. */
async function holdOrResume(
  ctx: NodeChangeStateContext,
  t: string,
  job: Job,
): Promise<number> {
  const id = job.job_id;
  if (t !== "RESUME_JOB" && job.state === "Waiting") {
    if (await setState(ctx, job, "Hold") && job.job_type === "INTERACTIVE" && job.info_type) {
      await tellOarsub(ctx, job.info_type, "Start prediction: undefined (Hold)");
    }
  } else if (t !== "RESUME_JOB" && job.state === "Resuming") {
    await setState(ctx, job, "Suspended");
    ctx.notifier.almighty("Term");
  } else if (t === "HOLD_RUNNING_JOB" && job.state === "Running") {
    return await suspendJob(ctx, job);
  } else if (t === "RESUME_JOB" && job.state === "Suspended") {
    await setState(ctx, job, "Resuming");
    ctx.notifier.almighty("Qresume");
  } else if (t === "RESUME_JOB" && job.state === "Hold") {
    await setState(ctx, job, "Waiting");
    ctx.notifier.almighty("Qresume");
  } else {
    ctx.log.info("{type} ignored for job {id} in state {state}", { type: t, id, state: job.state });
  }
  return 0;
}

/** A hold told to the job's oarsub; one that is gone is only worth a warning. */
async function tellOarsub(ctx: NodeChangeStateContext, infoType: string, message: string) {
  if (!await (ctx.notifyOarsub ?? notifyOarsub)(infoType, [message])) {
    ctx.log.warn("cannot notify oarsub at {infoType}", { infoType });
  }
}

/**
 * §9.2 suspend (HOLD_RUNNING_JOB on a Running job): stop the job's processes through oarexec
 * (noop jobs have none), record the suspension, run the after-suspend script. A failure to stop
 * is a SUSPEND_ERROR (its node gets suspected) and the job is fragged: exit code 2.
 */
async function suspendJob(ctx: NodeChangeStateContext, job: Job): Promise<number> {
  const id = job.job_id;
  try {
    const types = await getJobTypes(ctx.sql, id);
    if (!("noop" in types)) {
      const host = await headHost(ctx.sql, ctx.config, id);
      const error = await ctx.signaller.signal(host, id, "STOP");
      if (error !== null) {
        ctx.log.error("cannot suspend job {id} on {host}: {error}", { id, host, error });
        await addEvent(ctx.sql, {
          type: "SUSPEND_ERROR",
          jobId: id,
          description: `[NodeChangeState] cannot suspend job ${id} on ${host}: ${error}`,
          hosts: [host],
        });
        const frag = await fragJob(ctx.sql, id, NCS_USER);
        return frag === FragResult.ok ? 2 : 0;
      }
    }
    if (!await suspendJobAction(ctx.sql, id)) {
      ctx.log.info("job {id} left Running before it could be suspended", { id });
      return 0;
    }
    ctx.log.info("job {id} suspended", { id });
    await afterSuspendScript(ctx, id);
    return 0;
  } finally {
    ctx.notifier.almighty("Term");
  }
}

/**
 * `suspend_job_action`: the job Suspended and flagged as having been suspended, and its
 * resources flagged as holding a suspended job, in one transaction. False when the job was no
 * longer Running.
 */
export async function suspendJobAction(sql: Sql, jobId: number): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    const [job] = await tx<{ state: string }[]>`
      SELECT state FROM jobs WHERE job_id = ${jobId} FOR UPDATE`;
    if (job?.state !== "Running") return false;
    // Suspended is not a final state: setJobState sends nothing, a recording is not needed.
    const noNotify: Notifier = { almighty() {}, commander() {} };
    if (!await setJobState(tx, noNotify, jobId, "Suspended")) return false;
    await tx`UPDATE jobs SET suspended = 'YES' WHERE job_id = ${jobId}`;
    const ids = await tx<{ resource_id: number }[]>`
      SELECT r.resource_id FROM resources r
      WHERE r.suspended_jobs = 'NO' AND r.resource_id IN (
        SELECT ar.resource_id FROM jobs j
        JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
        WHERE j.state = 'Suspended' AND ar.assigned_resource_index = 'CURRENT')
      ORDER BY r.resource_id FOR UPDATE`;
    await tx`
      UPDATE resources SET suspended_jobs = 'YES'
      WHERE resource_id = ANY(${ids.map((r) => Number(r.resource_id))}::int[])`;
    return true;
  });
}

/** JUST_AFTER_SUSPEND_EXEC_FILE: on failure the job is resumed (SUSPEND_SCRIPT_ERROR). */
async function afterSuspendScript(ctx: NodeChangeStateContext, id: number): Promise<void> {
  const script = ctx.config.str("JUST_AFTER_SUSPEND_EXEC_FILE").trim();
  if (script === "") return;
  const timeout = ctx.config.int("SUSPEND_RESUME_SCRIPT_TIMEOUT");
  const r = await runTimedCommand([script, String(id)], { timeoutMs: timeout * 1000 });
  let failure: string | null = null;
  if (r.kind === "failed") failure = r.error;
  else if (r.kind === "timeout") failure = `timed out after ${timeout} s`;
  else if (r.code !== 0) failure = `exit code ${r.code}`;
  if (failure === null) return;
  const msg = `[NodeChangeState] after-suspend script ${script} failed for job ${id}: ${failure}`;
  ctx.log.error(msg);
  await addEvent(ctx.sql, { type: "SUSPEND_SCRIPT_ERROR", jobId: id, description: msg });
  await setJobState(ctx.sql, ctx.notifier, id, "Resuming");
  ctx.notifier.almighty("Qresume");
}

// ---------------------------------------------------------------------------------------------
// Resource next_state pass (§9.3)

async function nextStatePass(ctx: NodeChangeStateContext, run: RunState): Promise<void> {
  const pending = await resourcesToChange(ctx.sql);
  if (pending.length === 0) return;
  raise(run, 1);
  const perHost = new Map<string, Record<number, string>>();
  for (const r of pending) {
    const rid = r.resource_id;
    const applied = await inTransaction(ctx.sql, async (tx) => {
      // Apply only the request we read: a newer one is for the next run.
      const [now] = await tx<{ next_state: string }[]>`
        SELECT next_state FROM resources WHERE resource_id = ${rid} FOR UPDATE`;
      if (now?.next_state !== r.next_state) return false;
      const changed = r.state !== r.next_state &&
        await setResourceState(tx, rid, r.next_state, r.next_finaud_decision);
      await setResourceNextState(tx, rid, "UnChanged", "NO");
      return changed;
    });
    if (!applied) continue;
    const changes = perHost.get(r.network_address) ?? {};
    changes[rid] = r.next_state;
    perHost.set(r.network_address, changes);
    if (r.next_state === "Suspected") run.toHeal.push(`${rid} ${r.network_address}`);
    if (r.next_state === "Dead" || r.next_state === "Absent") {
      for (const jobId of await jobsToFragOnResource(ctx.sql, rid)) {
        ctx.log.warn("{host}: must kill job {jobId}", { host: r.network_address, jobId });
        if (await fragJob(ctx.sql, jobId, NCS_USER) === FragResult.ok) raise(run, 2);
      }
    }
  }
  for (const [host, changes] of perHost) {
    ctx.log.warn("state change requested for {host}: {changes}", {
      host,
      changes: JSON.stringify(changes),
    });
  }
}

/** `get_resource_job_to_frag`: unfinished jobs on the resource, except cosystem and noop ones. */
async function jobsToFragOnResource(sql: Sql, rid: number): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`
    SELECT DISTINCT j.job_id FROM jobs j
    JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
    WHERE ar.resource_id = ${rid} AND ar.assigned_resource_index = 'CURRENT'
      AND j.state NOT IN ${sql(FINAL_STATES)}
    ORDER BY j.job_id`;
  const ids: number[] = [];
  for (const r of rows) {
    const types = await getJobTypes(sql, Number(r.job_id));
    if (!("cosystem" in types) && !("noop" in types)) ids.push(Number(r.job_id));
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Healing (§9.4)

async function heal(ctx: NodeChangeStateContext, lines: string[]): Promise<void> {
  const script = ctx.config.str("SUSPECTED_HEALING_EXEC_FILE").trim();
  if (script === "" || lines.length === 0) return;
  const timeout = ctx.config.int("SUSPECTED_HEALING_TIMEOUT");
  ctx.log.warn("running the healing script for {n} suspected resource(s)", { n: lines.length });
  const r = await runTimedCommand([script], {
    stdin: lines.join("\n") + "\n",
    timeoutMs: timeout * 1000,
  });
  if (r.kind === "failed") ctx.log.error("healing script: {error}", { error: r.error });
  else if (r.kind === "timeout") {
    ctx.log.error("healing script {script} timed out ({timeout} s)", { script, timeout });
  } else if (r.code !== 0) {
    ctx.log.error("healing script {script} exited with {code}", { script, code: r.code });
  }
}
