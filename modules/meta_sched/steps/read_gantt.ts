/**
 * In the round's transaction: the Gantt locked and read as the tables hold it, the resource set
 * (read ahead) turned into the slot set, and the Gantt's base (step 2): the jobs it keeps, with
 * the quotas they count against (QUOTAS=yes).
 */
import type { Queryable } from "../../../lib/db/client.ts";
import { FilterCache } from "../kamelot/filters.ts";
import {
  type GanttMap,
  loadBaseGantt,
  loadGanttMap,
  lockGantt,
  visuResourcesInSync,
} from "../kamelot/gantt.ts";
import { loadRoundQuotas } from "../kamelot/quotas_load.ts";
import { MAX_TIME, SlotSet } from "../kamelot/slots.ts";
import { noJit, type RoundPlan, type RoundState } from "./round_state.ts";

export async function readGantt(round: RoundState, tx: Queryable): Promise<RoundPlan> {
  const { sql, config, log, now, security } = round;
  await noJit(tx);
  await lockGantt(tx);
  // Rounds are serialised by the lock: the `_visu` copy cannot change under this check.
  const [old, visuInSync, rs] = await Promise.all([
    loadGanttMap(tx),
    visuResourcesInSync(sql),
    round.resourceSetLoad,
  ]);
  const filters = new FilterCache(rs);
  const slots = new SlotSet(rs.schedulable, now);
  for (const [t, itvs] of rs.availableUpto) slots.occupy(Math.max(t, now), MAX_TIME, itvs);
  round.lap("resources_gantt_read");
  const gantt = await loadBaseGantt(tx, old, now);
  // QUOTAS=yes: the rules, with what the Gantt holds counted (quotas_load.ts).
  const quota = await loadRoundQuotas(tx, config, rs, gantt, now, security, log);
  const next: GanttMap = new Map();
  for (const g of gantt) next.set(g.moldableId, { start: g.start, rids: g.rids });
  round.lap("gantt_load");
  return {
    old,
    visuInSync,
    rs,
    filters,
    slots,
    gantt,
    quota,
    next,
    plannedEnd: new Map(),
    besteffortRunning: [],
    besteffortPlaced: false,
    containers: new Map(),
    ganttRows: [],
    streamed: new Set(),
    messagesWritten: new Map(),
    messageWrites: [],
    innerLater: [],
  };
}
