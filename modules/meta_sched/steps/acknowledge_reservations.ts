/**
 * Steps 13–14, the accepted reservations: each oarsub is told, and its job goes to Waiting (exit
 * 1 when one starts now: run again at once). A reservation whose oarsub cannot be told is
 * fragged (exit 2: almighty runs Leon).
 */
import { addEvent } from "../../../lib/job/events.ts";
import { fragJob } from "../../../lib/job/frag.ts";
import { setJobState } from "../../../lib/job/jobs.ts";
import { InteractiveMessages } from "../../../lib/protocol/mod.ts";
import type { RoundState } from "./round_state.ts";

export async function acknowledgeReservations(round: RoundState): Promise<void> {
  const { sql, notifier, oarsub, now, log } = round;
  const toAck = await sql<{ job_id: number; info_type: string | null; start: number | null }[]>`
    SELECT j.job_id, j.info_type,
      (SELECT g.start_time FROM gantt_jobs_predictions g
       JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
       WHERE m.moldable_job_id = j.job_id LIMIT 1) AS start
    FROM jobs j WHERE j.state = 'toAckReservation' ORDER BY j.job_id`;
  for (const j of toAck) {
    const id = Number(j.job_id);
    if (await oarsub(j.info_type, [InteractiveMessages.goodReservation])) {
      await setJobState(sql, notifier, id, "Waiting");
      if (j.start !== null && j.start - 1 <= now && round.exitCode === 0) round.exitCode = 1;
    } else {
      log.warn("job {id}: cannot notify oarsub of its reservation; job fragged", { id });
      await addEvent(sql, {
        type: "CANNOT_NOTIFY_OARSUB",
        jobId: id,
        description: `Can not notify oarsub for the job ${id}`,
      });
      // Waiting first: Leon turns a fragged Waiting job into Error.
      await setJobState(sql, notifier, id, "Waiting");
      await fragJob(sql, id, "oar");
      notifier.almighty("Qdel");
      round.exitCode = 2;
    }
  }
}
