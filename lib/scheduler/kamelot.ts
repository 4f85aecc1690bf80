/**
 * Kamelot's conservative backfilling, in memory (spec §11 "Kamelot"): jobs are taken in
 * priority order; each gets, among its moldables, the earliest-finishing window where its
 * request fits, and that window is reserved in the slot set at once. Every job thus holds a
 * reservation, and a later job can only use a hole that delays no earlier one.
 *
 * A job that cannot be placed is reported with a reason and skipped: one odd job never stops
 * the others (DECISIONS #47/#120/#132/#139).
 */
import { type GroupRequest, type Hierarchy, matchGroups, minResources } from "./hierarchy.ts";
import type { Itvs } from "./intervals.ts";
import type { SlotSet } from "./slots.ts";

export interface MoldableRequest {
  moldableId: number;
  /** Seconds, security time included: the job occupies [start, start + walltime - 1]. */
  walltime: number;
  groups: GroupRequest[];
  /**
   * Identical keys mean identical requests (walltime, groups, constraint sets): the earliest
   * start found for one is a lower bound for the next.
   */
  cacheKey?: string;
}

export interface SchedJob {
  jobId: number;
  moldables: MoldableRequest[];
  /** Earliest allowed start (now, or later). */
  minStart: number;
  /** Jobs that must end first: their planned end bounds this job's start. */
  after?: number[];
  /**
   * Timesharing key (timesharing.ts): the job may share resources with jobs of the same key,
   * and with no other. Absent: the job needs its resources to itself (DECISIONS #61).
   */
  timesharing?: string | null;
}

export interface Placement {
  jobId: number;
  moldableId: number;
  start: number;
  /** Security time included. */
  walltime: number;
  res: Itvs;
  timesharing?: string | null;
}

export interface ScheduleResult {
  placed: Placement[];
  /** Jobs left unplaced, with the reason (written to the job's message). */
  skipped: Map<number, string>;
}

export interface ScheduleOptions {
  /** Planned end (first free second) of jobs already in the Gantt; extended as jobs are placed. */
  plannedEnd?: Map<number, number>;
}

/** Places `jobs` (already in priority order) into `slots`, reserving each placement. */
export function scheduleJobs(
  slots: SlotSet,
  hy: Hierarchy,
  jobs: readonly SchedJob[],
  opts: ScheduleOptions = {},
): ScheduleResult {
  const plannedEnd = opts.plannedEnd ?? new Map<number, number>();
  const cache = new Map<string, number>();
  const placed: Placement[] = [];
  const skipped = new Map<number, string>();
  for (const job of jobs) {
    try {
      let minStart = job.minStart;
      let blocked: string | null = null;
      for (const dep of job.after ?? []) {
        const end = plannedEnd.get(dep);
        if (end === undefined) {
          blocked = `waiting for job ${dep}, which is not scheduled yet`;
          break;
        }
        minStart = Math.max(minStart, end);
      }
      if (blocked) {
        skipped.set(job.jobId, blocked);
        continue;
      }
      const useCache = minStart === job.minStart && (job.after ?? []).length === 0;
      let best: Placement | null = null;
      const ts = job.timesharing ?? null;
      for (const m of job.moldables) {
        // What a timesharing job may use depends on its key: the key is part of the request.
        const key = useCache && m.cacheKey
          ? (ts === null ? m.cacheKey : ts + "|" + m.cacheKey)
          : null;
        const cached = key === null ? undefined : cache.get(key);
        if (cached === Infinity) continue;
        const from = Math.max(minStart, cached ?? minStart);
        const match = (avail: Itvs) => matchGroups(hy, m.groups, avail);
        const fit = ts === null
          ? slots.findFirst(from, m.walltime, match, { minCount: minResources(m.groups) })
          : slots.findFirstShared(from, m.walltime, match, ts);
        if (key !== null) cache.set(key, fit ? fit.start : Infinity);
        if (fit === null) continue;
        const end = fit.start + m.walltime;
        if (best === null || end < best.start + best.walltime) {
          best = {
            jobId: job.jobId,
            moldableId: m.moldableId,
            start: fit.start,
            walltime: m.walltime,
            res: fit.value,
            timesharing: ts,
          };
        }
      }
      if (best === null) {
        skipped.set(job.jobId, "not enough resources match the request");
        continue;
      }
      slots.occupy(best.start, best.start + best.walltime - 1, best.res, ts);
      plannedEnd.set(job.jobId, best.start + best.walltime);
      placed.push(best);
    } catch (e) {
      skipped.set(job.jobId, `cannot be scheduled: ${(e as Error)?.message ?? e}`);
    }
  }
  return { placed, skipped };
}
