/**
 * Steps 13–14, the errors: each toError job goes to Error, and an interactive job's or a
 * reservation's oarsub, still waiting for its answer, is told why.
 */
import { setJobState } from "../../../lib/job/jobs.ts";
import { InteractiveMessages } from "../../../lib/protocol/mod.ts";
import type { RoundState } from "./round_state.ts";

export async function reportErrors(round: RoundState): Promise<void> {
  const { sql, notifier, oarsub, log } = round;
  const toError = await sql<
    {
      job_id: number;
      job_type: string;
      reservation: string;
      info_type: string | null;
      message: string;
    }[]
  >`
    SELECT job_id, job_type, reservation, info_type, message FROM jobs
    WHERE state = 'toError' ORDER BY job_id`;
  for (const j of toError) {
    if (j.job_type === "INTERACTIVE" || j.reservation === "Scheduled") {
      const sent = await oarsub(j.info_type, [j.message, InteractiveMessages.badJob]);
      if (!sent) log.warn("job {id}: cannot notify oarsub of its error", { id: j.job_id });
    }
    await setJobState(sql, notifier, Number(j.job_id), "Error");
  }
}
