/** The queues by priority group, and a group's waiting jobs in the order they are scheduled. */
import type { Queryable } from "../../../lib/db/client.ts";
import { type FairshareSettings, loadConsumption, sortByKarma } from "../kamelot/karma.ts";
import { loadWaitingByPriority, type MultifactorOrdering } from "../kamelot/priority_jobs.ts";
import { loadWaitingJobs, type SchedJobRow } from "../kamelot/requests.ts";

export interface QueueRow {
  queue_name: string;
  priority: number;
  scheduler_policy: string;
  state: string;
}

/** Queues by priority, highest first: groups of equal priority. */
export function queueGroups(queues: readonly QueueRow[]): QueueRow[][] {
  const groups: QueueRow[][] = [];
  for (const q of queues) {
    const last = groups.at(-1);
    if (last && last[0].priority === q.priority) last.push(q);
    else groups.push([q]);
  }
  return groups;
}

export interface GroupJobs {
  waiting: SchedJobRow[];
  /** Under fairsharing, the karma of every waiting job of the group. */
  karma: Map<number, number> | null;
}

/**
 * A queue group's waiting jobs in priority order. Fairsharing orders them by karma, multifactor
 * by priority (priority_jobs.ts), before the per-round limit applies, as OAR does: the limit
 * keeps the jobs of highest priority, not the oldest ones.
 */
export async function groupJobs(
  sql: Queryable,
  names: readonly string[],
  now: number,
  maxJobs: number,
  fairshare: FairshareSettings | null,
  multifactor: MultifactorOrdering | null = null,
): Promise<GroupJobs> {
  if (multifactor !== null) {
    return await loadWaitingByPriority(sql, names, now, maxJobs, multifactor);
  }
  if (fairshare === null) {
    return { waiting: await loadWaitingJobs(sql, names, maxJobs), karma: null };
  }
  const used = await loadConsumption(sql, names, now, fairshare.windowSize);
  let karma: Map<number, number> | null = null;
  const waiting = await loadWaitingJobs(sql, names, maxJobs, (jobs) => {
    const sorted = sortByKarma(jobs, used, fairshare);
    karma = sorted.karma;
    return sorted.ordered;
  });
  return { waiting, karma };
}
