/**
 * Jobs left in a transient state by a process that died (DECISIONS, issue on faults: no job stays
 * stuck). Run by sarko, so it works from cron too:
 *
 * - Launching for longer than a launch can take (2×TIMEOUT_SSH, the rendezvous limit, plus a
 *   margin): the bipbip that launched it is gone. The job is fragged like any other, so Leon
 *   signals a possibly running oarexec and the usual kill/exterminate path ends it in Error;
 *   nothing is left running on resources the scheduler would hand out again.
 * - Finishing for longer than the finishing sequence can take, with no unchecked event left for
 *   it: its bipbip died between "Finishing" and writing the events. An error event closes it.
 *
 * toLaunch jobs need nothing here: the meta-scheduler re-notifies them every round.
 */
import type { Config } from "./config.ts";
import type { Queryable } from "./db/client.ts";
import { addEvent } from "./events.ts";
import { fragJob, FragResult } from "./frag.ts";
import type { Logger } from "./log.ts";

/** Extra seconds granted beyond the limits the modules themselves enforce. */
const MARGIN = 60;
/** The event type recording why sarko acted (not one node_change_state acts on). */
export const STUCK_JOB_EVENT = "SARKO_STUCK_JOB";

export function launchingLimit(config: Config): number {
  return 2 * config.int("TIMEOUT_SSH") + MARGIN;
}

export function finishingLimit(config: Config): number {
  // Server epilogue, then the ping at job end (2×TIMEOUT_SSH), then the events.
  return config.int("SERVER_PROLOGUE_EPILOGUE_TIMEOUT") + 2 * config.int("TIMEOUT_SSH") + MARGIN;
}

/** Jobs in `state` since before `before` (their open state log), not yet fragged. */
async function stuckSince(sql: Queryable, state: string, before: number): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`
    SELECT j.job_id FROM jobs j
    JOIN job_state_logs l ON l.job_id = j.job_id AND l.date_stop = 0 AND l.job_state = ${state}
    WHERE j.state::text = ${state} AND l.date_start < ${before}
    ORDER BY j.job_id`;
  return rows.map((r) => Number(r.job_id));
}

/**
 * Handles stuck jobs; returns true when a job was fragged (Leon has work).
 * `user` is the account fragging (oar).
 */
export async function recoverStuckJobs(
  ctx: { sql: Queryable; config: Config; log: Logger; notifyChState: () => void },
  now: number,
  user: string,
): Promise<boolean> {
  let fragged = false;
  let events = false;
  for (const id of await stuckSince(ctx.sql, "Launching", now - launchingLimit(ctx.config))) {
    // -2: fragged already (by an earlier run, or oardel): the kill path is under way.
    if (await fragJob(ctx.sql, id, user) !== FragResult.ok) continue;
    await addEvent(ctx.sql, {
      type: STUCK_JOB_EVENT,
      jobId: id,
      description: `[sarko] job ${id} stuck in Launching: its launch never completed; fragged`,
    });
    ctx.log.warn("job {id} stuck in Launching; fragged", { id });
    fragged = true;
  }
  const finishing = await stuckSince(ctx.sql, "Finishing", now - finishingLimit(ctx.config));
  for (const id of finishing) {
    const [pending] = await ctx.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM event_logs WHERE job_id = ${id} AND to_check = 'YES'`;
    if (pending.n > 0) continue; // node_change_state has not seen its events yet
    await addEvent(ctx.sql, {
      type: "SWITCH_INTO_ERROR_STATE",
      jobId: id,
      description: `[sarko] job ${id} stuck in Finishing: its end was never recorded`,
    });
    ctx.log.warn("job {id} stuck in Finishing; switching it to Error", { id });
    events = true;
  }
  if (events) ctx.notifyChState();
  return fragged;
}
