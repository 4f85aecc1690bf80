/**
 * Inner jobs of a container whose queue came after theirs: once every group is done, those whose
 * container is now placed are scheduled into it, so that they need not wait a round.
 */
import { scheduleJobs } from "../kamelot/kamelot.ts";
import { toResourceIds } from "../kamelot/resource_set.ts";
import { placedMessage } from "./job_messages.ts";
import type { RoundPlan, RoundState } from "./round_state.ts";

export function retryInnerJobs(round: RoundState, plan: RoundPlan): void {
  const { skipped } = round;
  const { rs, containers } = plan;
  const retry = plan.innerLater.filter((l) => containers.has(l.job.inner!));
  if (retry.length === 0) return;
  const byId = new Map(retry.map((l) => [l.job.jobId, l]));
  for (const id of byId.keys()) skipped.delete(id);
  const result = scheduleJobs(plan.slots, rs.hierarchy, retry.map((l) => l.job), {
    plannedEnd: plan.plannedEnd,
    containers,
    security: round.security,
    quotas: plan.quota.quotas,
  });
  for (const [id, why] of result.skipped) skipped.set(id, why);
  for (const p of result.placed) {
    const l = byId.get(p.jobId)!;
    const rids = toResourceIds(rs, p.res);
    plan.ganttRows.push({ moldableId: p.moldableId, start: p.start, rids });
    round.messages.set(p.jobId, placedMessage(round, p, l.row, rids, l.karma));
  }
}
