/**
 * Jobs as the scheduler reads them: the `jobs` row plus its request, from OAR's tables
 * (moldable_job_descriptions → job_resource_groups → job_resource_descriptions, CURRENT rows;
 * res_job_value -1 = ALL, -2 = BEST), its types and its dependencies. `toSchedJob` turns one
 * into Kamelot's input, or into the reason it cannot be scheduled.
 */
import type { Queryable } from "../../../lib/db/client.ts";
import { ALL, BEST, type GroupRequest, type LevelRequest, unknownLabel } from "./hierarchy.ts";
import { intersect } from "./intervals.ts";
import { DEFAULT_GROUP_PROPERTY, type FilterCache } from "./filters.ts";
import type { MoldableRequest, SchedJob } from "./kamelot.ts";
import type { ResourceSet } from "./resource_set.ts";
import { schedTypes } from "./job_types.ts";
import { timesharingKey } from "./timesharing.ts";

export interface RawGroup {
  property: string | null;
  levels: LevelRequest[];
}

export interface RawMoldable {
  moldableId: number;
  walltime: number;
  groups: RawGroup[];
}

export interface Dependency {
  required: number;
  state: string | null;
  exitCode: number | null;
}

export interface SchedJobRow {
  jobId: number;
  user: string;
  project: string;
  name: string | null;
  jobType: string;
  infoType: string | null;
  queue: string;
  properties: string | null;
  reservation: string;
  state: string;
  /** For reservations: the requested start. */
  startTime: number;
  message: string;
  types: string[];
  moldables: RawMoldable[];
  deps: Dependency[];
}

interface JobRowDb {
  job_id: number;
  job_user: string;
  project: string;
  job_name: string | null;
  job_type: string;
  info_type: string | null;
  queue_name: string;
  properties: string | null;
  reservation: string;
  state: string;
  start_time: number;
  message: string;
}

/**
 * Waiting, non-reservation jobs of the queues, in priority order, at most `limit` (docs/modules.md
 * §11 Kamelot: sorted by JOB_PRIORITY, then truncated to
 * MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND). FIFO (job id) unless `prioritize` orders them
 * (fairsharing): the limit applies after it, and only the jobs kept get their requests read.
 */
export async function loadWaitingJobs(
  sql: Queryable,
  queues: readonly string[],
  limit: number,
  prioritize?: (jobs: SchedJobRow[]) => SchedJobRow[],
): Promise<SchedJobRow[]> {
  const rows = await sql<JobRowDb[]>`
    SELECT job_id, job_user, project, job_name, job_type, info_type, queue_name, properties,
      reservation, state, start_time, message
    FROM jobs
    WHERE state = 'Waiting' AND reservation = 'None' AND queue_name IN ${sql(queues)}
    ORDER BY job_id ${prioritize ? sql`` : sql`LIMIT ${limit}`}`;
  let jobs = rows.map(toRow);
  if (prioritize) jobs = prioritize(jobs).slice(0, Math.max(0, limit));
  return await attachRequests(sql, jobs);
}

/** Waiting jobs of a queue with the given reservation state, by job id. */
export async function loadReservations(
  sql: Queryable,
  queue: string,
  reservation: "toSchedule" | "Scheduled",
): Promise<SchedJobRow[]> {
  const rows = await sql<JobRowDb[]>`
    SELECT job_id, job_user, project, job_name, job_type, info_type, queue_name, properties,
      reservation, state, start_time, message
    FROM jobs
    WHERE state = 'Waiting' AND reservation = ${reservation} AND queue_name = ${queue}
    ORDER BY job_id`;
  return await attachRequests(sql, rows.map(toRow));
}

function toRow(r: JobRowDb): SchedJobRow {
  return {
    jobId: Number(r.job_id),
    user: r.job_user,
    project: r.project,
    name: r.job_name,
    jobType: r.job_type,
    infoType: r.info_type,
    queue: r.queue_name,
    properties: r.properties,
    reservation: r.reservation,
    state: r.state,
    startTime: r.start_time,
    message: r.message,
    types: [],
    moldables: [],
    deps: [],
  };
}

/**
 * Fills in the moldables, types and dependencies of `out` (in place); returns it.
 *
 * Each table is read on its own, by the keys the previous read gave, and joined here: a read
 * costs at worst a scan of its table whatever PostgreSQL believes of it. Joined in one
 * statement, the tables' statistics decided the plan, and just after a burst of submissions
 * they still say "nearly empty" (autovacuum analyses them up to a minute later): PostgreSQL
 * then compared every moldable with every group and every group with every description,
 * 257 ms for 1,000 waiting jobs instead of 6 (3,000: 558-707 ms instead of 20-46, bench:sched).
 */
async function attachRequests(sql: Queryable, out: SchedJobRow[]): Promise<SchedJobRow[]> {
  if (out.length === 0) return [];
  const byId = new Map<number, SchedJobRow>(out.map((j) => [j.jobId, j]));
  const idsText = intArray(out.map((j) => j.jobId));
  const [molds, types, deps] = await Promise.all([
    sql<{ job_id: number; moldable_id: number; walltime: number }[]>`
      SELECT moldable_job_id AS job_id, moldable_id, moldable_walltime AS walltime
      FROM moldable_job_descriptions
      WHERE moldable_job_id = ANY(${idsText}::int[]) AND moldable_index = 'CURRENT'
      ORDER BY moldable_job_id, moldable_id`,
    sql<{ job_id: number; type: string }[]>`
      SELECT job_id, type FROM job_types
      WHERE job_id = ANY(${idsText}::int[]) AND types_index = 'CURRENT'
      ORDER BY job_type_id`,
    sql<{ job_id: number; required: number }[]>`
      SELECT job_id, job_id_required AS required FROM job_dependencies
      WHERE job_id = ANY(${idsText}::int[]) AND job_dependency_index = 'CURRENT'
      ORDER BY job_id, job_id_required`,
  ]);
  const moldById = new Map<number, RawMoldable>();
  for (const r of molds) {
    const m: RawMoldable = { moldableId: Number(r.moldable_id), walltime: r.walltime, groups: [] };
    byId.get(Number(r.job_id))!.moldables.push(m);
    moldById.set(m.moldableId, m);
  }
  const required = [...new Set(deps.map((d) => Number(d.required)))];
  const [groups, prerequisites] = await Promise.all([
    moldById.size === 0
      ? []
      : sql<{ group_id: number; moldable_id: number; property: string | null }[]>`
      SELECT res_group_id AS group_id, res_group_moldable_id AS moldable_id,
        res_group_property AS property
      FROM job_resource_groups
      WHERE res_group_moldable_id = ANY(${intArray([...moldById.keys()])}::int[])
        AND res_group_index = 'CURRENT'
      ORDER BY res_group_moldable_id, res_group_id`,
    required.length === 0 ? [] : sql<{ job_id: number; state: string; exit_code: number | null }[]>`
      SELECT job_id, state, exit_code FROM jobs WHERE job_id = ANY(${intArray(required)}::int[])`,
  ]);
  const groupById = new Map<number, RawGroup>();
  for (const r of groups) {
    const g: RawGroup = { property: r.property, levels: [] };
    moldById.get(Number(r.moldable_id))!.groups.push(g);
    groupById.set(Number(r.group_id), g);
  }
  const levels = groupById.size === 0
    ? []
    : await sql<{ group_id: number; label: string | null; value: number | null }[]>`
    SELECT res_job_group_id AS group_id, res_job_resource_type AS label, res_job_value AS value
    FROM job_resource_descriptions
    WHERE res_job_group_id = ANY(${intArray([...groupById.keys()])}::int[])
      AND res_job_index = 'CURRENT'
    ORDER BY res_job_group_id, res_job_order`;
  for (const r of levels) {
    if (r.label !== null && r.value !== null) {
      groupById.get(Number(r.group_id))!.levels.push({ label: r.label, count: r.value });
    }
  }
  for (const t of types) byId.get(Number(t.job_id))!.types.push(t.type);
  const prerequisite = new Map(prerequisites.map((p) => [Number(p.job_id), p]));
  for (const d of deps) {
    const p = prerequisite.get(Number(d.required));
    byId.get(Number(d.job_id))!.deps.push({
      required: Number(d.required),
      state: p?.state ?? null,
      exitCode: p?.exit_code ?? null,
    });
  }
  return out;
}

/** A PostgreSQL int[] literal (one text parameter, rather than one per element). */
function intArray(ids: readonly number[]): string {
  return "{" + ids.join(",") + "}";
}

/** Every filter text a set of jobs needs evaluated. */
export function filtersOf(jobs: readonly SchedJobRow[]): Set<string> {
  const out = new Set<string>();
  for (const j of jobs) {
    if (j.properties) out.add(j.properties);
    for (const m of j.moldables) {
      for (const g of m.groups) out.add(g.property || DEFAULT_GROUP_PROPERTY);
    }
  }
  return out;
}

/** Builds the groups of one moldable, or the reason they cannot be built. */
export function buildGroups(
  job: SchedJobRow,
  m: RawMoldable,
  rs: ResourceSet,
  filters: FilterCache,
): GroupRequest[] | string {
  if (m.groups.length === 0) return "empty resource request";
  const jobSet = filters.get(job.properties);
  if (jobSet instanceof Error) return `bad properties: ${firstLine(jobSet.message)}`;
  const groups: GroupRequest[] = [];
  for (const g of m.groups) {
    if (g.levels.length === 0) return "empty resource request";
    for (const l of g.levels) {
      if (!(l.count > 0 || l.count === ALL || l.count === BEST)) {
        return `unsupported resource count ${l.count} for ${l.label}`;
      }
    }
    const groupSet = filters.get(g.property || DEFAULT_GROUP_PROPERTY);
    if (groupSet instanceof Error) return `bad properties: ${firstLine(groupSet.message)}`;
    groups.push({ levels: g.levels, constraint: intersect(jobSet, groupSet) });
  }
  const unknown = unknownLabel(rs.hierarchy, groups);
  if (unknown !== null) return `unknown resource type ${unknown} (not in HIERARCHY_LABELS)`;
  return groups;
}

function firstLine(s: string): string {
  return s.split("\n")[0].slice(0, 120);
}

/** Kamelot's input for a waiting job (security time added), or why it cannot be scheduled. */
export function toSchedJob(
  job: SchedJobRow,
  rs: ResourceSet,
  filters: FilterCache,
  security: number,
  now: number,
): SchedJob | string {
  if (job.moldables.length === 0) return "no moldable description";
  const moldables: MoldableRequest[] = [];
  for (const m of job.moldables) {
    if (!(m.walltime > 0)) return `bad walltime ${m.walltime}`;
    const groups = buildGroups(job, m, rs, filters);
    if (typeof groups === "string") return groups;
    moldables.push({
      moldableId: m.moldableId,
      walltime: m.walltime + security,
      groups,
      cacheKey: JSON.stringify([
        m.walltime,
        job.properties ?? "",
        m.groups.map((g) => [g.property ?? "", g.levels.map((l) => [l.label, l.count])]),
      ]),
    });
  }
  const after: number[] = [];
  for (const d of job.deps) {
    if (d.state === "Error") continue; // a failed prerequisite is ignored (OAR's rule)
    if (d.state === "Terminated") {
      if (d.exitCode === null || d.exitCode === 0) continue;
      return `dependency on job ${d.required}, which ended with exit code ${d.exitCode}`;
    }
    if (d.state === null) continue; // no such job: nothing to wait for
    after.push(d.required);
  }
  const st = schedTypes(job.types);
  return {
    jobId: job.jobId,
    moldables,
    minStart: now,
    after,
    timesharing: timesharingKey(job.types, job.user, job.name),
    inner: st.inner,
    container: st.container,
    placeholder: st.placeholder,
    allow: st.allow,
  };
}

/** OAR's duration text (`H:MM:SS`). */
export function durationText(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}

/** The job message the scheduler leaves: `R=…,W=…,J=…,Q=…[,N=…][,T=…]`. */
export function jobMessage(
  job: Pick<SchedJobRow, "name" | "jobType" | "queue" | "types">,
  nbResources: number,
  walltime: number,
  reservation: boolean,
  extra?: string,
): string {
  const mode = reservation ? "R" : job.jobType === "INTERACTIVE" ? "I" : "B";
  let msg = `R=${nbResources},W=${durationText(walltime)},J=${mode},Q=${job.queue}`;
  if (job.name) msg += `,N=${job.name}`;
  if (job.types.length > 0) msg += `,T=${job.types.join("|")}`;
  if (extra) msg += ` (${extra})`;
  return msg;
}
