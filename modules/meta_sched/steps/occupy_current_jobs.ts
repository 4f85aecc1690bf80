/**
 * The jobs the Gantt keeps (its base, step 2) occupy the slot set (and their containers'),
 * containers and placeholders first; running besteffort jobs are held aside, to occupy it only
 * for the besteffort queue (placeRunningBesteffort).
 */
import type { GanttJob } from "../kamelot/gantt.ts";
import { RESOURCE_HOLDING_STATES } from "../../../lib/job/states.ts";
import { schedTypes } from "../kamelot/job_types.ts";
import { containerName, containerSlotSet } from "../kamelot/kamelot.ts";
import { toOrderedIds } from "../kamelot/resource_set.ts";
import type { SlotSet } from "../kamelot/slots.ts";
import { timesharingKey } from "../kamelot/timesharing.ts";
import type { RoundPlan, RoundState } from "./round_state.ts";

const CURRENT: ReadonlySet<string> = new Set(RESOURCE_HOLDING_STATES);

export function occupyCurrentJobs(round: RoundState, plan: RoundPlan): void {
  const { security } = round;
  const { rs, gantt, plannedEnd, containers } = plan;
  // Containers and placeholders first: the jobs inside them are counted against them.
  const holdsOthers = (g: GanttJob) => {
    const st = schedTypes(g.types);
    return st.container !== null || st.placeholder !== null;
  };
  const ordered = [...gantt.filter(holdsOthers), ...gantt.filter((g) => !holdsOthers(g))];
  for (const g of ordered) {
    plannedEnd.set(g.jobId, g.start + g.walltime + security + g.suspendedFor);
    const st = schedTypes(g.types);
    const name = containerName(g.jobId, st.container);
    if (name !== null) {
      containers.set(
        name,
        containerSlotSet(toOrderedIds(rs, g.rids), g.start, g.walltime + g.suspendedFor),
      );
    }
    if (st.inner !== null) {
      // Inside its container; in the default Gantt too, where the container already holds
      // the same resources (and where they stay held should the container be gone).
      const c = containers.get(st.inner);
      if (c !== undefined) occupyGanttJob(round, plan, g, c);
    }
    if (g.besteffort && CURRENT.has(g.state)) {
      plan.besteffortRunning.push(g);
      continue;
    }
    occupyGanttJob(round, plan, g, plan.slots);
  }
}

/** The running besteffort jobs occupy the slot set, once, before the besteffort queue. */
export function placeRunningBesteffort(round: RoundState, plan: RoundPlan): void {
  if (plan.besteffortPlaced) return;
  plan.besteffortPlaced = true;
  for (const g of plan.besteffortRunning) occupyGanttJob(round, plan, g, plan.slots);
  plan.quota.countBesteffort();
}

function occupyGanttJob(round: RoundState, plan: RoundPlan, g: GanttJob, set: SlotSet): void {
  // A job past its walltime still holds its resources until it is really gone.
  const occupied = g.walltime + round.security + g.suspendedFor;
  const end = Math.max(g.start + occupied - 1, CURRENT.has(g.state) ? round.now : 0);
  const st = schedTypes(g.types);
  set.occupy(
    g.start,
    end,
    toOrderedIds(plan.rs, g.rids),
    timesharingKey(g.types, g.user, g.name),
    {
      placeholder: st.placeholder,
      allow: st.allow,
    },
  );
}
