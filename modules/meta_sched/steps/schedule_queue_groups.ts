/**
 * In the round's transaction: the queues by priority group, highest first. For each group,
 * Kamelot on the group's waiting jobs together, then each queue's reservations (steps 4 and 5).
 * The Gantt rows of jobs placed meanwhile are streamed to PostgreSQL, and their messages
 * written, between two chunks of jobs.
 */
import type { Queryable } from "../../../lib/db/client.ts";
import { openPairsCopy, type PairsCopy, pairsText } from "../kamelot/gantt.ts";
import { type SchedJob, scheduleJobs } from "../kamelot/kamelot.ts";
import { filtersOf, type SchedJobRow, toSchedJob } from "../kamelot/requests.ts";
import { toResourceIds } from "../kamelot/resource_set.ts";
import { groupJobs, queueGroups } from "./group_jobs.ts";
import { isShown, placedMessage, saveMessages } from "./job_messages.ts";
import { placeRunningBesteffort } from "./occupy_current_jobs.ts";
import { newReservations, waitingReservations } from "./reservations.ts";
import type { RoundPlan, RoundState } from "./round_state.ts";

/** Jobs scheduled between two hand-overs of their decisions to PostgreSQL. */
const SCHEDULE_CHUNK = 500;

export async function scheduleQueueGroups(
  round: RoundState,
  plan: RoundPlan,
  tx: Queryable,
): Promise<void> {
  const { log } = round;
  for (const group of queueGroups(await round.queuesLoad)) {
    const active = group.filter((q) => q.state === "Active");
    if (active.length === 0) continue;
    if (active.every((q) => q.queue_name === "besteffort")) placeRunningBesteffort(round, plan);
    if (round.external) {
      // External schedulers are not supported: OAR's rule for a scheduler that cannot run
      // applies (the queue is deactivated), and the admin reads why in the log.
      for (const q of active) {
        log.error(
          "queue {queue}: external scheduler {policy} cannot be run; queue set notActive",
          {
            queue: q.queue_name,
            policy: q.scheduler_policy,
          },
        );
        round.notActive.push(q.queue_name);
      }
      continue;
    }
    await scheduleWaitingJobs(round, plan, tx, active.map((q) => q.queue_name));
    for (const q of active) {
      await waitingReservations(round, plan, tx, q.queue_name);
      if (plan.quota.broken !== null) continue; // left to be scheduled once the file is fixed
      await newReservations(round, plan, tx, q.queue_name);
    }
  }
}

/** Kamelot on the group's queues together (the first group's jobs were read ahead). */
async function scheduleWaitingJobs(
  round: RoundState,
  plan: RoundPlan,
  tx: Queryable,
  names: string[],
): Promise<void> {
  const { sql, now, security, skipped } = round;
  const { rs, filters, slots, quota, containers } = plan;
  const pre = await round.prefetch;
  const { waiting, karma } = pre !== null && pre.key === names.join("\u0000")
    ? pre.jobs
    : await groupJobs(tx, names, now, round.maxJobs, round.fairshare, round.multifactor);
  round.prefetch = Promise.resolve(null);
  for (const [id, k] of karma ?? []) round.karmas.set(id, k);
  round.lap("jobs_load");
  if (quota.broken !== null) {
    // An unusable quotas file holds scheduling (quotas_load.ts says why).
    for (const j of waiting) skipped.set(j.jobId, quota.broken);
    return;
  }
  if (waiting.length === 0) return;
  // Own READ ONLY transaction on another connection: never the one writing the Gantt.
  await filters.load(sql, filtersOf(waiting));
  const schedJobs: SchedJob[] = [];
  const rows = new Map<number, SchedJobRow>();
  for (const j of waiting) {
    rows.set(j.jobId, j);
    round.shown.set(j.jobId, j.message);
    const sj = toSchedJob(j, rs, filters, security, now);
    if (typeof sj === "string") skipped.set(j.jobId, sj);
    else schedJobs.push(quota.quotas ? { ...sj, quota: j } : sj);
  }
  round.lap("requests");
  // In chunks: between two, the Gantt rows and messages of the jobs placed so far go to
  // PostgreSQL, which writes them on its own core while the next chunk is scheduled.
  const cache = new Map<string, number>();
  let copy = null as PairsCopy | null;
  const vcopy = await round.visu.copy.promise;
  for (let c = 0; c < schedJobs.length; c += SCHEDULE_CHUNK) {
    const result = scheduleJobs(
      slots,
      rs.hierarchy,
      schedJobs.slice(c, c + SCHEDULE_CHUNK),
      { plannedEnd: plan.plannedEnd, containers, security, cache, quotas: quota.quotas },
    );
    for (const [id, why] of result.skipped) skipped.set(id, why);
    for (const j of schedJobs.slice(c, c + SCHEDULE_CHUNK)) {
      if (j.inner && skipped.has(j.jobId) && !containers.has(j.inner)) {
        plan.innerLater.push({ job: j, row: rows.get(j.jobId)!, karma: karma?.get(j.jobId) });
      }
    }
    const chunkMessages = new Map<number, string>();
    let rowsText = "";
    for (const p of result.placed) {
      const rids = toResourceIds(rs, p.res);
      plan.ganttRows.push({ moldableId: p.moldableId, start: p.start, rids });
      const text = placedMessage(round, p, rows.get(p.jobId)!, rids, karma?.get(p.jobId));
      round.messages.set(p.jobId, text);
      // In a steady queue most are what the previous round wrote.
      if (!isShown(round, p.jobId, text)) chunkMessages.set(p.jobId, text);
      // Rows of a moldable the table does not hold cannot conflict: streamed now.
      if (!plan.old.has(p.moldableId)) {
        rowsText += pairsText(p.moldableId, rids);
        plan.streamed.add(p.moldableId);
      }
    }
    if (rowsText !== "") {
      copy ??= await openPairsCopy(tx, "gantt");
      copy.write(rowsText);
      vcopy?.write(rowsText);
    }
    if (chunkMessages.size > 0) {
      const w = saveMessages(sql, chunkMessages);
      w.catch(() => {}); // awaited before the commit
      plan.messageWrites.push(w);
      for (const [id, text] of chunkMessages) plan.messagesWritten.set(id, text);
    }
    if (c + SCHEDULE_CHUNK < schedJobs.length) await yieldToIo();
  }
  if (copy !== null) await copy.end();
  round.lap("schedule");
}

/** Lets pending socket writes and replies go through. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
