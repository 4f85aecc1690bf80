/**
 * The round's decisions written, in its transaction: the Gantt as its difference with what the
 * tables held (gantt.ts), and, on another connection at the same time, the waiting jobs'
 * messages and karmas.
 */
import type { Queryable } from "../../../lib/db/client.ts";
import { inTransaction } from "../../../lib/job/events.ts";
import { applyGanttDelta, diffGantt } from "../kamelot/gantt.ts";
import { saveKarma } from "../kamelot/karma.ts";
import { isShown, saveMessages } from "./job_messages.ts";
import { noJit, type RoundPlan, type RoundState } from "./round_state.ts";

export async function saveGantt(round: RoundState, plan: RoundPlan, tx: Queryable): Promise<void> {
  const { messages } = round;
  const { next } = plan;
  for (const [id, why] of round.skipped) messages.set(id, why);
  for (const r of plan.ganttRows) {
    next.set(r.moldableId, { start: r.start, rids: r.rids.slice().sort((a, b) => a - b) });
  }
  const delta = diffGantt(plan.old, next);
  round.visu.deltaReady.resolve(delta);
  // Messages and karmas go on another connection, at the same time as the Gantt: they touch
  // only waiting non-reservation jobs, which nothing in this transaction writes (no lock
  // conflict), and a message is informative: committed apart, it harms nothing.
  for (const [id, text] of plan.messagesWritten) {
    if (messages.get(id) === text) messages.delete(id);
  }
  for (const [id, text] of messages) if (isShown(round, id, text)) messages.delete(id);
  await Promise.all([
    applyGanttDelta(tx, delta, "gantt", { written: plan.streamed }),
    inTransaction(round.sql, async (mtx) => {
      await noJit(mtx);
      await saveMessages(mtx, messages);
      await saveKarma(mtx, round.karmas);
    }),
    ...plan.messageWrites,
  ]);
  round.lap("gantt_save");
}
