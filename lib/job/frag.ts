/**
 * Job deletion requests: the `frag_jobs` lifecycle shared by oardel, Sarko, NodeChangeState,
 * the meta-scheduler and Leon (docs/modules.md §6.3, §12.2).
 *
 *   LEON ─leon─► TIMER_ARMED ─sarko─► FRAGGED | LEON (re-send) | LEON_EXTERMINATE ─leon─► …
 */
import type { Queryable } from "../db/client.ts";
import { insertEvent, insertEvents, inTransaction } from "./events.ts";
import { type Job, normaliseJob } from "./jobs.ts";
import { ENDING_STATES } from "./states.ts";

export const FRAG_STATES = ["LEON", "TIMER_ARMED", "LEON_EXTERMINATE", "FRAGGED"] as const;
export type FragState = typeof FRAG_STATES[number];

/** `frag_job`'s return codes (docs/modules.md §6.3). */
export const FragResult = {
  ok: 0,
  notAllowed: -1,
  alreadyFragged: -2,
  noSuchJob: -3,
} as const;
export type FragResult = typeof FragResult[keyof typeof FragResult];

/** Users allowed to delete any job. */
const FRAG_ADMINS: ReadonlySet<string> = new Set(["oar", "root"]);

/**
 * `frag_job(job, user)`: -3 no such job, -1 `user` is neither the owner nor oar/root, -2 a
 * deletion was already requested, 0 the request is recorded (frag row in state LEON and event
 * FRAG_JOB_REQUEST). The frag row's primary key decides between concurrent requests: exactly
 * one INSERT wins, the others see the conflict and return -2 without writing anything.
 * Almighty is not notified here: callers send `Qdel` (or their own command) themselves.
 */
export async function fragJob(sql: Queryable, jobId: number, user: string): Promise<FragResult> {
  return await inTransaction(sql, async (tx) => {
    const jobs = await tx<{ job_user: string }[]>`
      SELECT job_user FROM jobs WHERE job_id = ${jobId}`;
    if (jobs.length === 0) return FragResult.noSuchJob;
    if (user !== jobs[0].job_user && !FRAG_ADMINS.has(user)) return FragResult.notAllowed;
    // The event carries the frag row's date, so that both say the same second.
    const inserted = await tx<{ now: number }[]>`
      INSERT INTO frag_jobs (frag_id_job, frag_date, frag_state)
      VALUES (${jobId}, EXTRACT(EPOCH FROM now())::int, 'LEON')
      ON CONFLICT (frag_id_job) DO NOTHING
      RETURNING frag_date AS now`;
    if (inserted.length === 0) return FragResult.alreadyFragged;
    await insertEvent(tx, {
      type: "FRAG_JOB_REQUEST",
      jobId,
      description: `User ${user} requested to frag the job ${jobId}`,
    }, inserted[0].now);
    return FragResult.ok;
  });
}

/**
 * `fragJob` for many jobs in one transaction and a handful of statements, whatever their number
 * (an `oardel --array` of 100,000 jobs took minutes one job at a time): the result of each id,
 * with the same rules and the same rows and events as `fragJob`.
 */
export async function fragJobs(
  sql: Queryable,
  ids: readonly number[],
  user: string,
): Promise<Map<number, FragResult>> {
  const result = new Map<number, FragResult>();
  if (ids.length === 0) return result;
  return await inTransaction(sql, async (tx) => {
    const rows = await tx<{ job_id: number; job_user: string }[]>`
      SELECT job_id, job_user FROM jobs WHERE job_id = ANY(${ids as number[]}::int[])`;
    const owner = new Map(rows.map((r) => [Number(r.job_id), r.job_user]));
    const allowed: number[] = [];
    for (const id of ids) {
      const u = owner.get(id);
      if (u === undefined) result.set(id, FragResult.noSuchJob);
      else if (u !== user && !FRAG_ADMINS.has(user)) result.set(id, FragResult.notAllowed);
      else allowed.push(id);
    }
    const inserted = await tx<{ id: number }[]>`
      INSERT INTO frag_jobs (frag_id_job, frag_date, frag_state)
      SELECT x, EXTRACT(EPOCH FROM now())::int, 'LEON' FROM unnest(${allowed}::int[]) AS x
      ON CONFLICT (frag_id_job) DO NOTHING
      RETURNING frag_id_job AS id`;
    const fragged = new Set(inserted.map((r) => Number(r.id)));
    for (const id of allowed) {
      result.set(id, fragged.has(id) ? FragResult.ok : FragResult.alreadyFragged);
    }
    await insertEvents(
      tx,
      allowed.filter((id) => fragged.has(id)).map((id) => ({
        type: "FRAG_JOB_REQUEST",
        jobId: id,
        description: `User ${user} requested to frag the job ${id}`,
      })),
    );
    return result;
  });
}

/**
 * Moves a frag row to `state` (`job_fragged`, `job_arm_leon_timer`, `job_refrag`,
 * `job_leon_exterminate`). With `from`, only a row currently in one of those states moves: a
 * compare-and-set, so that Leon and Sarko acting on the same row cannot undo each other.
 * Returns whether the row changed.
 */
export async function setFragState(
  sql: Queryable,
  jobId: number,
  state: FragState,
  from?: FragState | readonly FragState[],
): Promise<boolean> {
  const allowed = from === undefined ? null : (typeof from === "string" ? [from] : [...from]);
  const r = await sql`
    UPDATE frag_jobs SET frag_state = ${state}
    WHERE frag_id_job = ${jobId}
      AND (${allowed}::text[] IS NULL OR frag_state = ANY(${allowed}::text[]))`;
  return r.count === 1;
}

/** `get_jobs_to_kill`: frag state LEON, job not already Error/Terminated/Finishing. */
export async function jobsToKill(sql: Queryable): Promise<Job[]> {
  const rows = await sql<Job[]>`
    SELECT j.* FROM jobs j JOIN frag_jobs f ON f.frag_id_job = j.job_id
    WHERE f.frag_state = 'LEON' AND j.state NOT IN ${sql(ENDING_STATES)}
    ORDER BY j.job_id`;
  return rows.map(normaliseJob);
}

/** `get_to_exterminate_jobs`: frag state LEON_EXTERMINATE. */
export async function jobsToExterminate(sql: Queryable): Promise<Job[]> {
  const rows = await sql<Job[]>`
    SELECT j.* FROM jobs j JOIN frag_jobs f ON f.frag_id_job = j.job_id
    WHERE f.frag_state = 'LEON_EXTERMINATE'
    ORDER BY j.job_id`;
  return rows.map(normaliseJob);
}

/** `get_timer_armed_job` with the frag date Sarko measures the soft/hard delays from. */
export async function timerArmedJobs(sql: Queryable): Promise<(Job & { frag_date: number })[]> {
  const rows = await sql<(Job & { frag_date: number })[]>`
    SELECT j.*, f.frag_date FROM jobs j JOIN frag_jobs f ON f.frag_id_job = j.job_id
    WHERE f.frag_state = 'TIMER_ARMED'
    ORDER BY j.job_id`;
  return rows.map((r) => ({ ...normaliseJob(r), frag_date: r.frag_date }));
}

/** `get_job_frag_state`: null when no deletion was requested. */
export async function fragState(sql: Queryable, jobId: number): Promise<FragState | null> {
  const rows = await sql<{ frag_state: FragState }[]>`
    SELECT frag_state FROM frag_jobs WHERE frag_id_job = ${jobId}`;
  return rows.length ? rows[0].frag_state : null;
}

/** `get_frag_date`: null when no deletion was requested. */
export async function fragDate(sql: Queryable, jobId: number): Promise<number | null> {
  const rows = await sql<{ frag_date: number }[]>`
    SELECT frag_date FROM frag_jobs WHERE frag_id_job = ${jobId}`;
  return rows.length ? rows[0].frag_date : null;
}
