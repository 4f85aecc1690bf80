/**
 * One meta-scheduler round (OAR's `kao`, docs/modules.md §11). Exit code: 0 normal, 1 run again at
 * once (a reservation was acknowledged and starts now), 2 besteffort jobs were fragged (almighty
 * runs Leon).
 *
 * Shape: the Gantt is rebuilt and every decision computed in memory, then written in one
 * transaction (steps 2–5), as the difference with what the tables held (gantt.ts); state
 * changes follow, each through setJobState (steps 6–15). Work that touches disjoint rows runs
 * on other connections at the same time: the resource set is read while the Gantt is, the
 * job messages and the `_visu` copy are written while the Gantt is (the copy's predictions
 * once the launches are done). A job the scheduler cannot handle gets a message and is
 * skipped: a round never dies of one job.
 *
 * The steps (steps/) run in this order over one round state (steps/round_state.ts).
 */
import type { Sql } from "../../lib/db/client.ts";
import { inTransaction } from "../../lib/job/events.ts";
import { acknowledgeReservations } from "./steps/acknowledge_reservations.ts";
import { applyStateChanges } from "./steps/apply_state_changes.ts";
import { beginRound } from "./steps/begin_round.ts";
import { deactivateQueues } from "./steps/deactivate_queues.ts";
import { launchDueJobs } from "./steps/launch_due_jobs.ts";
import { notifyStartPredictions } from "./steps/notify_start_predictions.ts";
import { occupyCurrentJobs } from "./steps/occupy_current_jobs.ts";
import { readGantt } from "./steps/read_gantt.ts";
import { renotifyToLaunch } from "./steps/renotify_to_launch.ts";
import { reportErrors } from "./steps/report_errors.ts";
import { retryInnerJobs } from "./steps/retry_inner_jobs.ts";
import { saveGantt } from "./steps/save_gantt.ts";
import { scheduleQueueGroups } from "./steps/schedule_queue_groups.ts";
import { abandonVisuCopy, finishVisuCopy, openVisuCopy } from "./steps/visu_copy.ts";
import type { RoundContext } from "./steps/round_state.ts";

export type { RoundContext };

/**
 * The connections a round's pool needs: its transaction, the `_visu` copy's transaction beside
 * it, and one for what goes alongside (the first reads, the waiting jobs' messages). Fewer would
 * deadlock, as the round's transaction waits on those. More only opened more backends: each
 * costs PostgreSQL ~4 ms to start and again the catalog look-ups of every statement it parses
 * (an idle round: 38 → 32 ms of PostgreSQL, 110 → 98 ms of meta_sched, from 5 to 3).
 */
export const ROUND_POOL_SIZE = 3;

export interface RoundReport {
  exitCode: number;
  /** Jobs set to toLaunch this round. */
  launched: number[];
  /** Besteffort jobs fragged this round. */
  fragged: number[];
  /** Job id → why it was not scheduled. */
  skipped: Map<number, string>;
  timings: Record<string, number>;
}

export async function metaSchedRound(ctx: RoundContext): Promise<RoundReport> {
  checkPoolSize(ctx.sql);
  // Each lap is a phase of the round's timings, as bench:sched prints them.
  const round = await beginRound(ctx);
  try {
    const plan = await inTransaction(round.sql, async (tx) => {
      const plan = await readGantt(round, tx);
      occupyCurrentJobs(round, plan);
      openVisuCopy(round, plan);
      await scheduleQueueGroups(round, plan, tx);
      retryInnerJobs(round, plan);
      round.lap("reservations");
      await saveGantt(round, plan, tx);
      await deactivateQueues(round, tx);
      round.lap("messages");
      return plan;
    });
    round.lap("commit");
    await applyStateChanges(round);
    await launchDueJobs(round, plan);
    round.lap("launch");
    await finishVisuCopy(round);
    round.lap("visu");
  } catch (e) {
    await abandonVisuCopy(round, e);
    throw e;
  }
  await notifyStartPredictions(round);
  round.lap("predictions");
  await reportErrors(round);
  await acknowledgeReservations(round);
  await renotifyToLaunch(round);
  round.lap("notify");
  const { exitCode, launched, fragged, skipped, timings } = round;
  return { exitCode, launched, fragged, skipped, timings };
}

/**
 * The round's transaction, the `_visu` one and the writes beside them hold connections at
 * once: with fewer than 3, they would wait for each other for ever.
 */
function checkPoolSize(sql: Sql): void {
  const poolMax = (sql as { options?: { max?: number } }).options?.max;
  if (poolMax !== undefined && poolMax < 3) {
    throw new Error(`the meta-scheduler needs a pool of 3 connections or more (got ${poolMax})`);
  }
}
