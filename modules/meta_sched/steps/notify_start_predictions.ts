import { addEvent } from "../../../lib/job/events.ts";
import { fragJob, FragResult } from "../../../lib/job/frag.ts";
import { InteractiveMessages } from "../../../lib/protocol/mod.ts";
import type { RoundState } from "./round_state.ts";

/**
 * Step 12: each interactive job still waiting is told its predicted start
 * (`[now] Start prediction: start (message)`), every round. An oarsub that cannot be reached
 * has gone: its job is fragged (event LOST_SESSION) and Almighty told (Qdel), as OAR does.
 * The notifications go out concurrently: one unreachable host does not delay the others.
 */
export async function notifyStartPredictions(round: RoundState): Promise<void> {
  const { sql, notifier, oarsub, now, log } = round;
  const jobs = await sql<
    { job_id: number; info_type: string | null; message: string; start: number }[]
  >`
    SELECT j.job_id, j.info_type, j.message, MIN(g.start_time) AS start
    FROM jobs j
    JOIN moldable_job_descriptions m ON m.moldable_job_id = j.job_id
    JOIN gantt_jobs_predictions g ON g.moldable_job_id = m.moldable_id
    WHERE j.state = 'Waiting' AND j.job_type = 'INTERACTIVE' AND j.reservation = 'None'
      AND NOT EXISTS (SELECT 1 FROM frag_jobs f WHERE f.frag_id_job = j.job_id)
    GROUP BY j.job_id, j.info_type, j.message
    ORDER BY j.job_id`;
  if (jobs.length === 0) return;
  const nowText = sqlTime(now);
  const sent = await Promise.all(jobs.map((j) =>
    oarsub(j.info_type, [
      InteractiveMessages.startPrediction(nowText, sqlTime(j.start), j.message),
    ])
  ));
  let lost = 0;
  for (let i = 0; i < jobs.length; i++) {
    if (sent[i]) continue;
    const id = Number(jobs[i].job_id);
    log.warn("job {id}: cannot reach its interactive oarsub; job fragged", { id });
    await addEvent(sql, {
      type: "LOST_SESSION",
      jobId: id,
      description: `Cannot notify the interactive oarsub of the job ${id}: session lost`,
    });
    if (await fragJob(sql, id, "oar") === FragResult.ok) lost++;
  }
  if (lost > 0) notifier.almighty("Qdel");
}

/** `YYYY-MM-DD hh:mm:ss` in local time: OAR's local_to_sql, as oarsub shows it to the user. */
export function sqlTime(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
