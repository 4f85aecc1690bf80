/**
 * What bipbip tells an interactive oarsub while it launches the job (docs/modules.md §4.3):
 * `Starting...`, `GOOD JOB` once oarexec met the rendezvous, `ERROR: ...` when the launch failed.
 * Only an INTERACTIVE job that is not an advance reservation has an oarsub waiting on its socket.
 *
 * A `GOOD JOB` that cannot be delivered means nobody will open the job's shell: the job is
 * fragged and leon told (docs/differences.md §8; the reference only sent Qdel, which did nothing).
 */
import type { Queryable } from "../db/client.ts";
import { addEvent } from "./events.ts";
import { fragJob, FragResult } from "./frag.ts";
import type { Job } from "./jobs.ts";
import type { Logger } from "../runtime/log.ts";
import type { Notifier } from "../transport/notifier.ts";
import { InteractiveMessages } from "../protocol/mod.ts";
import { notifyOarsub } from "./oarsub_notify.ts";

/** Whether an oarsub waits on the job's socket. */
export function hasWaitingOarsub(job: Job): boolean {
  return job.job_type === "INTERACTIVE" && job.reservation === "None";
}

/** Best effort: one line to the job's oarsub; true when written (or nobody waits). */
export async function tellOarsub(job: Job, text: string): Promise<boolean> {
  if (!hasWaitingOarsub(job)) return true;
  return await notifyOarsub(job.info_type, [text]);
}

/** `GOOD JOB` to the job's oarsub; when it cannot be told, the job is deleted. */
export async function announceStart(
  ctx: { sql: Queryable; notifier: Notifier; log: Logger },
  job: Job,
): Promise<void> {
  if (!hasWaitingOarsub(job)) return;
  if (await tellOarsub(job, InteractiveMessages.goodJob)) return;
  const jobId = job.job_id;
  ctx.log.warn("[{id}] Frag job because oarsub cannot be notified by the frontend", { id: jobId });
  await addEvent(ctx.sql, {
    type: "LOST_SESSION",
    jobId,
    description: `[bipbip] cannot tell the interactive oarsub of job ${jobId} that it started`,
  });
  if (await fragJob(ctx.sql, jobId, "oar") === FragResult.ok) ctx.notifier.almighty("Qdel");
}
