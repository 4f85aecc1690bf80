/**
 * Kamelot's conservative backfilling, in memory (docs/modules.md §11 "Kamelot"): jobs are taken in
 * priority order; each gets, among its moldables, the earliest-finishing window where its
 * request fits, and that window is reserved in the slot set at once. Every job thus holds a
 * reservation, and a later job can only use a hole that delays no earlier one.
 *
 * A job that cannot be placed is reported with a reason and skipped: one odd job never stops
 * the others (docs/differences.md #47/#120/#132/#139).
 */
import {
  blocksRequest,
  type GroupRequest,
  type Hierarchy,
  matchGroups,
  minResources,
  singleCount,
} from "./hierarchy.ts";
import type { Itvs } from "./intervals.ts";
import { checkedByQuotas, countedByQuotas, type QuotaJob, type Quotas } from "./quotas.ts";
import { type Sharing, SlotSet } from "./slots.ts";

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
   * and with no other. Absent: the job needs its resources to itself (docs/differences.md #61).
   */
  timesharing?: string | null;
  /** `-t inner=<name>`: placed inside that container's slot set, never in the default one. */
  inner?: string | null;
  /** `-t container[=<name>]`: once placed, its resources and window become a slot set. */
  container?: string | null;
  /** `-t placeholder=<name>` / `-t allow=<name>` (slots.ts Sharing). */
  placeholder?: string | null;
  allow?: string | null;
  /** What quotas count (queue, project, user, types); used when quotas are on. */
  quota?: QuotaJob;
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
  /**
   * Slot sets of the containers, by name: those of the Gantt's containers, and those of the
   * containers placed by this call (added as they are placed, for the inner jobs after them).
   */
  containers?: Map<string, SlotSet>;
  /** SCHEDULER_JOB_SECURITY_TIME: a container's window is its walltime without it. */
  security?: number;
  /**
   * Earliest start found per request key (MoldableRequest.cacheKey): pass the same map to
   * successive calls on one slot set (jobs scheduled in chunks) to keep its benefit.
   */
  cache?: Map<string, number>;
  /**
   * Quotas (quotas.ts), with what the Gantt already holds counted: a job is placed only in a
   * window where it keeps within them, and is counted once placed.
   */
  quotas?: Quotas | null;
}

/**
 * The slot set of a container placed at `start` on `res` for `walltime` seconds (security time
 * excluded): its resources over its window, nothing beyond. (OAR gives inner jobs the container's
 * walltime; their own security time is inside it.)
 */
export function containerSlotSet(res: Itvs, start: number, walltime: number): SlotSet {
  return new SlotSet(res, start, start + Math.max(walltime, 1) - 1);
}

/** The container name a job's types give (`container` alone: the job's id), or null. */
export function containerName(jobId: number, container: string | null | undefined) {
  if (container === null || container === undefined) return null;
  return container === "" ? String(jobId) : container;
}

/** Places `jobs` (already in priority order) into `slots`, reserving each placement. */
export function scheduleJobs(
  slots: SlotSet,
  hy: Hierarchy,
  jobs: readonly SchedJob[],
  opts: ScheduleOptions = {},
): ScheduleResult {
  const plannedEnd = opts.plannedEnd ?? new Map<number, number>();
  const containers = opts.containers ?? new Map<string, SlotSet>();
  const security = opts.security ?? 0;
  const cache = opts.cache ?? new Map<string, number>();
  const quotas = opts.quotas ?? null;
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
      const inner = job.inner ?? null;
      const set = inner === null ? slots : containers.get(inner);
      if (set === undefined) {
        // An inner job waits for its container to be scheduled or running (OAR skips it).
        skipped.set(job.jobId, `container ${inner} is not scheduled or running`);
        continue;
      }
      const useCache = minStart === job.minStart && (job.after ?? []).length === 0;
      const quotaJob = quotas !== null && job.quota && checkedByQuotas(job.quota.types)
        ? job.quota
        : null;
      let quotaWhy: string | undefined;
      let best: Placement | null = null;
      const ts = job.timesharing ?? null;
      const sh: Sharing = { ts, allow: job.allow ?? null, placeholder: job.placeholder ?? null };
      const shared = ts !== null || sh.allow !== null;
      // What a job may use depends on its slot set, timesharing key and placeholder: they are
      // part of the request.
      const prefix = (inner === null ? "" : "inner:" + inner + "\u0000") +
        (ts === null ? "" : ts + "\u0000") + (sh.allow ? "allow:" + sh.allow + "\u0000" : "");
      for (const m of job.moldables) {
        const key = useCache && m.cacheKey ? prefix + m.cacheKey : null;
        const cached = key === null ? undefined : cache.get(key);
        if (cached === Infinity) continue;
        const from = Math.max(minStart, cached ?? minStart);
        const match = (avail: Itvs) => matchGroups(hy, m.groups, avail);
        const single = shared ? 0 : singleCount(hy, m.groups);
        const blocks = shared || single > 0 ? null : blocksRequest(hy, m.groups);
        const allowed = single > 0 || blocks !== null ? set.mask(m.groups[0].constraint) : null;
        const find = (t: number) =>
          shared
            ? set.findFirstShared(t, m.walltime, match, sh)
            : allowed !== null && blocks !== null
            ? set.findFirstBlocks(t, m.walltime, blocks, allowed)
            : allowed !== null
            ? set.findFirstN(t, m.walltime, single, allowed)
            : set.findFirst(t, m.walltime, match, { minCount: minResources(m.groups) });
        let fit = find(from);
        // The cache keeps the resources' answer: a lower bound for any job, whatever its quotas.
        if (key !== null) cache.set(key, fit ? fit.start : Infinity);
        if (fit !== null && quotaJob !== null) {
          const q = quotas!.fitFrom(quotaJob, fit, find, m.walltime, m.walltime - security);
          fit = q.fit;
          quotaWhy ??= q.why;
        }
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
        skipped.set(
          job.jobId,
          quotaWhy ??
            (inner === null
              ? "not enough resources match the request"
              : `the request does not fit in container ${inner} (its resources and window)`),
        );
        continue;
      }
      set.occupy(best.start, best.start + best.walltime - 1, best.res, ts, sh);
      if (quotas !== null && job.quota && countedByQuotas(job.quota.types)) {
        const end = best.start + best.walltime - 1;
        quotas.add(
          job.quota,
          best.start,
          end,
          quotas.nbResources(best.res),
          best.walltime - security,
        );
      }
      const name = containerName(job.jobId, job.container);
      if (name !== null) {
        containers.set(name, containerSlotSet(best.res, best.start, best.walltime - security));
      }
      plannedEnd.set(job.jobId, best.start + best.walltime);
      placed.push(best);
    } catch (e) {
      skipped.set(job.jobId, `cannot be scheduled: ${(e as Error)?.message ?? e}`);
    }
  }
  return { placed, skipped };
}
