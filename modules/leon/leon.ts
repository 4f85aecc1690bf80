/**
 * Leon (docs/modules.md §6): job deletion.
 *
 * - `leon` (run by almighty): the kill pass over jobs fragged in state LEON (Waiting/Hold ⇒
 *   Error, noop ⇒ Terminated, started jobs ⇒ SEND_KILL_JOB + TERM to their oarexec, without
 *   waiting), each then TIMER_ARMED; and the exterminate pass over LEON_EXTERMINATE jobs
 *   (⇒ Finishing, and LEONEXTERMINATE to bipbip_commander). Exit 1 when a job was put in
 *   Error or Terminated directly (almighty then schedules), else 0.
 * - `leon <job_id>` (run by bipbip_commander on LEONEXTERMINATE): TIMER_ARMED and the
 *   finishing sequence with EXTERMINATE_JOB (NodeChangeState then puts the job in Error).
 *   Exit 0; 1 for a non-integer argument.
 */
import { InteractiveMessages } from "../../lib/protocol/mod.ts";
import { addEvent } from "../../lib/job/events.ts";
import { fragState, jobsToExterminate, jobsToKill, setFragState } from "../../lib/job/frag.ts";
import { type JobEndContext, jobFinishingSequence } from "../../lib/job/end.ts";
import {
  getJobTypes,
  jobCurrentHosts,
  setFinishDate,
  setJobState,
  setRunningDate,
} from "../../lib/job/jobs.ts";
import { isFinalState, type JobState, stateIn } from "../../lib/job/states.ts";
import type { OarexecSignaller } from "../../lib/launch/oarexec_signal.ts";
import { headHostOf } from "../../lib/job/head_host.ts";
import { notifyOarsub } from "../../lib/job/oarsub_notify.ts";

export interface LeonContext extends JobEndContext {
  /** TERM to the oarexec of a started job. */
  signaller: OarexecSignaller;
}

/**
 * Leon's rule, not a property of the states: the jobs it sends TERM to, i.e. those to kill
 * (lib/job/frag.ts: not Finishing or final) that it does not end directly (Waiting, Hold).
 */
const SIGNALLED_STATES: readonly JobState[] = [
  "toLaunch",
  "Launching",
  "Running",
  "Suspended",
  "Resuming",
  "toAckReservation",
  "toError",
];

export async function leon(ctx: LeonContext, args: string[]): Promise<number> {
  if (args.length > 0) {
    if (!/^\d{1,12}$/.test(args[0])) {
      ctx.log.error("bad job id {arg}", { arg: args[0] });
      return 1;
    }
    return await exterminateOne(ctx, Number(args[0]));
  }
  const code = await killPass(ctx);
  await exterminatePass(ctx);
  return code;
}

/** §6.1 */
async function exterminateOne(ctx: LeonContext, jobId: number): Promise<number> {
  const { sql, log, notifier } = ctx;
  const state = await fragState(sql, jobId);
  if (state !== "LEON_EXTERMINATE") {
    log.error("[{id}] not to exterminate (frag state {state})", { id: jobId, state });
    return 0;
  }
  if (!(await setFragState(sql, jobId, "TIMER_ARMED", "LEON_EXTERMINATE"))) {
    log.warn("[{id}] exterminated by someone else meanwhile", { id: jobId });
    return 0;
  }
  log.warn("[{id}] I exterminate the job", { id: jobId });
  await jobFinishingSequence(ctx, jobId, [{
    type: "EXTERMINATE_JOB",
    jobId,
    description: `[Leon] I exterminate the job ${jobId}`,
  }]);
  notifier.almighty("ChState");
  return 0;
}

/** §6.2, normal kill pass. */
async function killPass(ctx: LeonContext): Promise<number> {
  const { sql, config, log, notifier } = ctx;
  let code = 0;
  for (const job of await jobsToKill(sql)) {
    const jobId = job.job_id;
    const types = await getJobTypes(sql, jobId);
    if (job.state === "Waiting" || job.state === "Hold") {
      log.info("[{id}] killed directly ({state})", { id: jobId, state: job.state });
      await setJobState(sql, notifier, jobId, "Error", { message: "Job killed by Leon directly" });
      if (
        job.job_type === "INTERACTIVE" &&
        !(await notifyOarsub(job.info_type, [InteractiveMessages.jobKilled]))
      ) {
        log.warn("[{id}] cannot notify oarsub that the job is killed", { id: jobId });
      }
      code = 1;
    } else if ("noop" in types) {
      log.info("[{id}] noop job: Terminated", { id: jobId });
      await setFinishDate(sql, jobId);
      await setJobState(sql, notifier, jobId, "Terminated");
      await jobFinishingSequence(ctx, jobId, []);
      code = 1;
    } else if (stateIn(SIGNALLED_STATES, job.state)) {
      const host = headHostOf(config, types, await jobCurrentHosts(sql, jobId));
      if (host !== "") {
        await addEvent(sql, {
          type: "SEND_KILL_JOB",
          jobId,
          description: `[Leon] Send the kill signal to oarexec on ${host} for job ${jobId}`,
        });
        const err = await ctx.signaller.signal(host, jobId, "TERM", { wait: false });
        if (err) {
          log.error("[{id}] cannot signal oarexec on {host}: {err}", { id: jobId, host, err });
        }
      }
    }
    await setFragState(sql, jobId, "TIMER_ARMED", "LEON");
  }
  return code;
}

/** §6.2, exterminate pass. */
async function exterminatePass(ctx: LeonContext): Promise<void> {
  const { sql, log, notifier } = ctx;
  for (const job of await jobsToExterminate(sql)) {
    const jobId = job.job_id;
    if (isFinalState(job.state)) {
      // Nothing left to exterminate: do not suspect its nodes for a job that ended.
      log.info("[{id}] already {state}: no extermination", { id: jobId, state: job.state });
      await setFragState(sql, jobId, "FRAGGED", "LEON_EXTERMINATE");
      continue;
    }
    log.warn("[{id}] to exterminate", { id: jobId });
    if (job.start_time === 0) await setRunningDate(sql, jobId);
    await setFinishDate(sql, jobId);
    await setJobState(sql, notifier, jobId, "Finishing", { message: "Job exterminated by Leon" });
    notifier.commander({ job_id: jobId, cmd: "LEONEXTERMINATE", args: [] });
  }
}
