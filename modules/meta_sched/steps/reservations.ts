/** Steps 4 and 5, a queue's advance reservations, in the round's transaction. */
import type { Queryable } from "../../../lib/db/client.ts";
import { addEvent } from "../../../lib/job/events.ts";
import { setJobMessage } from "../../../lib/job/jobs.ts";
import { matchGroups } from "../kamelot/hierarchy.ts";
import { contains, difference, type Itvs } from "../kamelot/intervals.ts";
import { schedTypes } from "../kamelot/job_types.ts";
import { containerName, containerSlotSet } from "../kamelot/kamelot.ts";
import { buildGroups, filtersOf, jobMessage, loadReservations } from "../kamelot/requests.ts";
import { toResourceIds } from "../kamelot/resource_set.ts";
import type { Sharing } from "../kamelot/slots.ts";
import { timesharingKey } from "../kamelot/timesharing.ts";
import type { RoundPlan, RoundState } from "./round_state.ts";

/** Step 4: accepted reservations whose start has come but whose resources are missing. */
export async function waitingReservations(
  round: RoundState,
  plan: RoundPlan,
  tx: Queryable,
  queue: string,
): Promise<void> {
  const { now, log } = round;
  const { rs, next } = plan;
  const alive = difference(rs.schedulable, rs.absent);
  for (const g of plan.gantt) {
    if (g.queue !== queue || g.reservation !== "Scheduled" || g.state !== "Waiting") continue;
    if (now > g.jobStart + g.walltime) {
      round.stateChanges.push({
        jobId: g.jobId,
        state: "Error",
        message: "Reservation expired and couldn't be started.",
      });
      continue;
    }
    if (g.start > now) continue;
    const presentRids = g.rids.filter((rid) => {
      const o = rs.oids.get(rid);
      return o !== undefined && contains(alive, o);
    });
    const missing = g.rids.length - presentRids.length;
    if (missing === 0) continue;
    const entry = next.get(g.moldableId)!;
    if (presentRids.length === 0 || now <= g.jobStart + round.arTimeout) {
      entry.start = now + 1;
      continue;
    }
    const keep = presentRids;
    entry.rids = keep;
    await addEvent(tx, {
      type: "SCHEDULER_REDUCE_NB_RESSOURCES_FOR_RESERVATION",
      jobId: g.jobId,
      description: `[MetaSched] Reduce the number of resources for the job ${g.jobId}`,
    });
    const [{ message }] = await tx<{ message: string }[]>`
      SELECT message FROM jobs WHERE job_id = ${g.jobId}`;
    await setJobMessage(tx, g.jobId, message.replace(/R=\d+/, `R=${keep.length}`));
    log.info("reservation {id}: {n} missing resources dropped", { id: g.jobId, n: missing });
  }
}

/**
 * Step 5: new advance reservations of a queue, first moldable only. With quotas on, a
 * reservation that would break them is refused.
 */
export async function newReservations(
  round: RoundState,
  plan: RoundPlan,
  tx: Queryable,
  queue: string,
): Promise<void> {
  const { now, security, stateChanges } = round;
  const { rs, filters, slots, containers } = plan;
  const ars = await loadReservations(tx, queue, "toSchedule");
  if (ars.length === 0) return;
  await filters.load(round.sql, filtersOf(ars));
  for (const j of ars) {
    const refuse = (message: string) =>
      stateChanges.push({ jobId: j.jobId, state: "toError", message });
    const m = j.moldables[0];
    if (!m) {
      refuse("This advance reservation cannot run: no moldable description");
      continue;
    }
    if (now >= j.startTime + m.walltime) {
      refuse("Reservation too old");
      continue;
    }
    const start = Math.max(j.startTime, now);
    const groups = buildGroups(j, m, rs, filters);
    if (typeof groups === "string") {
      refuse(`This advance reservation cannot run: ${groups}`);
      continue;
    }
    const st = schedTypes(j.types);
    const set = st.inner === null ? slots : containers.get(st.inner);
    if (set === undefined) {
      refuse(`This advance reservation cannot run: container ${st.inner} is not scheduled`);
      continue;
    }
    // As for any job: a timesharing reservation may use what jobs of its key hold, an
    // allow=<name> one what placeholder <name> holds (and consumes it).
    const sh: Sharing = {
      ts: timesharingKey(j.types, j.user, j.name),
      allow: st.allow,
      placeholder: st.placeholder,
    };
    const free = sh.ts !== null || sh.allow !== null
      ? set.freeOverShared(start, m.walltime + security, sh)
      : set.freeOver(start, m.walltime + security);
    const res: Itvs | null = free.length === 0 ? null : matchGroups(rs.hierarchy, groups, free);
    if (res === null) {
      refuse("This advance reservation cannot run");
      continue;
    }
    const overQuota = plan.quota.quotas?.admit(j, res, start, m.walltime + security, m.walltime) ??
      null;
    if (overQuota !== null) {
      refuse(`This advance reservation cannot run: ${overQuota}`);
      continue;
    }
    set.occupy(start, start + m.walltime + security - 1, res, sh.ts, sh);
    const name = containerName(j.jobId, st.container);
    if (name !== null) containers.set(name, containerSlotSet(res, start, m.walltime));
    const rids = toResourceIds(rs, res);
    plan.ganttRows.push({ moldableId: m.moldableId, start, rids });
    stateChanges.push({
      jobId: j.jobId,
      state: "toAckReservation",
      message: jobMessage(j, rids.length, m.walltime, true),
    });
  }
  await tx`UPDATE jobs SET reservation = 'Scheduled'
    WHERE job_id IN ${tx(ars.map((j) => j.jobId))} AND reservation = 'toSchedule'`;
}
