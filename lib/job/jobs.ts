/**
 * Job state and job reads (docs/modules.md §12.2, §13.1). Every state change goes through
 * `setJobState`, whose conditional UPDATE is the arbiter between concurrent writers (bipbip
 * children, leon, NodeChangeState, CLI): the row lock it takes serialises them, and a writer that
 * loses sees zero rows changed and does nothing else.
 *
 * Not done here, unlike OAR's set_job_state: user notification (mail/exec, `notify_user`) and
 * the scheduler-priority update of `SCHEDULER_PRIORITY_HIERARCHY_ORDER`.
 */
import type { Queryable, TxSql } from "../db/client.ts";
import type { Notifier } from "../transport/notifier.ts";
import { type JobTypes, parseJobTypes } from "../protocol/mod.ts";
import { fitVarchar, inTransaction } from "./events.ts";
import { FINAL_STATES, isFinalState, type JobState, SUSPENDED_STATES } from "./states.ts";

// lib/cli/oarstat.ts still imports UNFINISHED_STATES from here; the states live in states.ts.
export { UNFINISHED_STATES } from "./states.ts";

/** A `jobs` row (docs/modules.md §13). */
export interface Job {
  job_id: number;
  array_id: number;
  array_index: number;
  initial_request: string | null;
  job_name: string | null;
  job_env: string | null;
  job_type: "INTERACTIVE" | "PASSIVE";
  info_type: string | null;
  state: JobState;
  reservation: "None" | "toSchedule" | "Scheduled";
  message: string;
  scheduler_info: string;
  job_user: string;
  project: string;
  job_group: string;
  command: string | null;
  exit_code: number | null;
  queue_name: string;
  properties: string | null;
  launching_directory: string;
  submission_time: number;
  start_time: number;
  stop_time: number;
  file_id: number | null;
  accounted: "YES" | "NO";
  notify: string | null;
  assigned_moldable_job: number;
  checkpoint: number;
  checkpoint_signal: number;
  stdout_file: string | null;
  stderr_file: string | null;
  resubmit_job_id: number;
  suspended: "YES" | "NO";
  last_karma: number | null;
}

/** `jobs.message` is varchar(255). */
export const JOB_MESSAGE_MAX = 255;

export interface SetJobStateOptions {
  /**
   * Written to `jobs.message` by the same UPDATE, hence only when the state does change (a
   * writer that lost the race must not overwrite the winner's explanation).
   */
  message?: string;
}

interface ChangedJob {
  start_time: number;
  stop_time: number;
  assigned_moldable_job: number | null;
  suspended: "YES" | "NO";
  now: number;
}

/**
 * `set_job_state` (docs/modules.md §12.2). Refuses to leave Terminated/Error and refuses a no-op;
 * returns whether the state changed. One transaction: the job row, its state log, and for a final
 * state the stop time, resources.last_job_date, suspended_jobs (Error of a suspended job) and
 * the LOG indexes; then almighty gets `ChState`.
 */
export async function setJobState(
  sql: Queryable,
  notifier: Notifier,
  jobId: number,
  state: JobState,
  opts: SetJobStateOptions = {},
): Promise<boolean> {
  const final = isFinalState(state);
  const message = opts.message === undefined ? null : fitVarchar(opts.message, JOB_MESSAGE_MAX);
  const changed = await inTransaction(sql, async (tx) => {
    // The time is read in RETURNING, i.e. once the row lock is held: a writer that queued
    // behind another one must not date its log row before the one it closes.
    const rows = await tx<ChangedJob[]>`
      UPDATE jobs SET
        state = ${state}::job_state,
        message = COALESCE(${message}::text, message),
        stop_time = CASE WHEN ${final}::boolean AND stop_time < start_time
                         THEN start_time ELSE stop_time END
      WHERE job_id = ${jobId}
        AND state NOT IN ${tx(FINAL_STATES)}
        AND state <> ${state}::job_state
      RETURNING start_time, stop_time, assigned_moldable_job, suspended,
        EXTRACT(EPOCH FROM clock_timestamp())::int AS now`;
    if (rows.length === 0) return false;
    const job = rows[0];
    await tx`
      WITH closed AS (
        UPDATE job_state_logs SET date_stop = ${job.now}
        WHERE job_id = ${jobId} AND date_stop = 0
      )
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      VALUES (${jobId}, ${state}, ${job.now}, 0)`;
    if (final) await finaliseMany(tx, state, [{ ...job, job_id: jobId }]);
    return true;
  });
  if (changed && final) notifier.almighty("ChState");
  return changed;
}

/**
 * The Terminated/Error part of set_job_state, inside its transaction, for one job or many (in
 * set-based statements): the stop time's resources get last_job_date (their rows locked at
 * once, in id order, as everywhere), suspended_jobs flags are cleared when a suspended job
 * ends in Error, and `log_job` moves the jobs' rows of the per-job tables to index LOG, which
 * keeps the CURRENT partitions (what the scheduler scans) small.
 */
async function finaliseMany(
  tx: TxSql,
  state: JobState,
  rows: readonly (ChangedJob & { job_id: number })[],
): Promise<void> {
  const withMoldable = rows.filter((r) => (r.assigned_moldable_job ?? 0) !== 0);
  if (withMoldable.length > 0) {
    const molds = "{" + withMoldable.map((r) => r.assigned_moldable_job).join(",") + "}";
    const nows = "{" + withMoldable.map((r) => r.now).join(",") + "}";
    await tx`
      SELECT resource_id FROM resources
      WHERE resource_id IN (SELECT resource_id FROM assigned_resources
                            WHERE moldable_job_id = ANY(${molds}::int[]))
      ORDER BY resource_id FOR UPDATE`;
    await tx`
      UPDATE resources r SET last_job_date = u.now
      FROM (
        SELECT ar.resource_id, MAX(x.now) AS now
        FROM unnest(${molds}::int[], ${nows}::int[]) AS x(moldable, now)
        JOIN assigned_resources ar ON ar.moldable_job_id = x.moldable
        GROUP BY ar.resource_id
      ) u
      WHERE r.resource_id = u.resource_id`;
  }
  const suspended = rows.find((r) => r.suspended === "YES");
  if (state === "Error" && suspended) await clearSuspendedFlags(tx);
  const ids = "{" + rows.map((r) => Number(r.job_id)).join(",") + "}";
  const molds = "{" + rows.map((r) => r.assigned_moldable_job ?? 0).join(",") + "}";
  // `= ANY(ARRAY(...))` rather than `IN (SELECT ...)`: for a batch of jobs the planner
  // otherwise scanned the whole of job_resource_groups, and every CURRENT row through the
  // index on the index columns (measured 12.4 -> 5.2 ms for 100 jobs among 20,000).
  await tx`
    WITH molds AS MATERIALIZED (
      SELECT moldable_id FROM moldable_job_descriptions
      WHERE moldable_job_id = ANY(${ids}::int[])
    ), groups AS MATERIALIZED (
      SELECT res_group_id FROM job_resource_groups
      WHERE res_group_moldable_id = ANY(ARRAY(SELECT moldable_id FROM molds))
    ), m AS (
      UPDATE moldable_job_descriptions SET moldable_index = 'LOG'
      WHERE moldable_id = ANY(ARRAY(SELECT moldable_id FROM molds)) AND moldable_index = 'CURRENT'
    ), g AS (
      UPDATE job_resource_groups SET res_group_index = 'LOG'
      WHERE res_group_id = ANY(ARRAY(SELECT res_group_id FROM groups))
        AND res_group_index = 'CURRENT'
    ), d AS (
      UPDATE job_resource_descriptions SET res_job_index = 'LOG'
      WHERE res_job_group_id = ANY(ARRAY(SELECT res_group_id FROM groups))
        AND res_job_index = 'CURRENT'
    ), t AS (
      UPDATE job_types SET types_index = 'LOG'
      WHERE job_id = ANY(${ids}::int[]) AND types_index = 'CURRENT'
    ), dep AS (
      UPDATE job_dependencies SET job_dependency_index = 'LOG'
      WHERE job_id = ANY(${ids}::int[]) AND job_dependency_index = 'CURRENT'
    )
    UPDATE assigned_resources SET assigned_resource_index = 'LOG'
    WHERE moldable_job_id = ANY(array_remove(${molds}::int[], 0))
      AND assigned_resource_index = 'CURRENT'`;
}

/**
 * A job leaving Suspended for Error no longer holds its resources suspended: keep the flag
 * only where another Suspended job still sits (the job is already in Error, so it does not
 * count).
 */
async function clearSuspendedFlags(tx: TxSql): Promise<void> {
  await tx`
    SELECT resource_id FROM resources WHERE suspended_jobs = 'YES'
    ORDER BY resource_id FOR UPDATE`;
  await tx`
    UPDATE resources SET suspended_jobs = 'NO'
    WHERE suspended_jobs = 'YES'
      AND resource_id NOT IN (
        SELECT ar.resource_id FROM jobs j
        JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
        WHERE j.state = 'Suspended' AND ar.assigned_resource_index = 'CURRENT')`;
}

/** `set_job_message` (truncated to the column's 255 characters). Returns whether a row changed. */
export async function setJobMessage(
  sql: Queryable,
  jobId: number,
  message: string,
): Promise<boolean> {
  const r = await sql`
    UPDATE jobs SET message = ${fitVarchar(message, JOB_MESSAGE_MAX)} WHERE job_id = ${jobId}`;
  return r.count === 1;
}

/** `set_job_exit_code`: the raw wait status of the user command (NULL when unknown). */
export async function setJobExitCode(
  sql: Queryable,
  jobId: number,
  exitCode: number | null,
): Promise<boolean> {
  const r = await sql`UPDATE jobs SET exit_code = ${exitCode}::int WHERE job_id = ${jobId}`;
  return r.count === 1;
}

/** `set_finish_date`: stop_time := max(now, start_time). Returns the stop time, null if no job. */
export async function setFinishDate(sql: Queryable, jobId: number): Promise<number | null> {
  const rows = await sql<{ stop_time: number }[]>`
    UPDATE jobs SET stop_time = GREATEST(EXTRACT(EPOCH FROM now())::int, start_time)
    WHERE job_id = ${jobId} RETURNING stop_time`;
  return rows.length ? rows[0].stop_time : null;
}

/** `set_running_date`: start_time := now. Returns the start time, null if no job. */
export async function setRunningDate(sql: Queryable, jobId: number): Promise<number | null> {
  const rows = await sql<{ start_time: number }[]>`
    UPDATE jobs SET start_time = EXTRACT(EPOCH FROM now())::int
    WHERE job_id = ${jobId} RETURNING start_time`;
  return rows.length ? rows[0].start_time : null;
}

/** The `jobs` row, or null. */
export async function getJob(sql: Queryable, jobId: number): Promise<Job | null> {
  const rows = await sql<Job[]>`SELECT * FROM jobs WHERE job_id = ${jobId}`;
  return rows.length ? normaliseJob(rows[0]) : null;
}

/** bigserial columns come back as numbers already; file_id etc. are plain int. */
export function normaliseJob(j: Job): Job {
  return { ...j, job_id: Number(j.job_id) };
}

/** The job's CURRENT types through the one parser (docs/differences.md §16). */
export async function getJobTypes(sql: Queryable, jobId: number): Promise<JobTypes> {
  const rows = await sql<{ type: string }[]>`
    SELECT type FROM job_types WHERE job_id = ${jobId} AND types_index = 'CURRENT'
    ORDER BY job_type_id`;
  return parseJobTypes(rows.map((r) => r.type));
}

/** Byte-order sort: host names are ASCII, and the database collation may not be. */
export function sortHosts(hosts: string[]): string[] {
  return hosts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * `get_job_current_hostnames`: distinct hosts (type default, non-empty address) assigned
 * CURRENT to the job's assigned moldable, sorted; the first one is the head node
 * (docs/differences.md §15).
 */
export async function jobCurrentHosts(sql: Queryable, jobId: number): Promise<string[]> {
  const rows = await sql<{ network_address: string }[]>`
    SELECT DISTINCT r.network_address
    FROM assigned_resources ar
    JOIN resources r ON r.resource_id = ar.resource_id
    WHERE ar.moldable_job_id = (SELECT assigned_moldable_job FROM jobs WHERE job_id = ${jobId})
      -- ::text keeps the planner off the index on assigned_resource_index (nearly every row
      -- is CURRENT): through it this ran 1.6 ms a call, the most costly query of a job's run.
      AND ar.assigned_resource_index::text = 'CURRENT'
      AND r.type = 'default' AND r.network_address <> ''`;
  return sortHosts(rows.map((r) => r.network_address));
}

/**
 * `get_job_host_log`: the same hosts whatever the assignment index (the job may already be
 * logged), sorted as well so that "the first host" is the head node here too.
 */
export async function jobHostsForLog(sql: Queryable, jobId: number): Promise<string[]> {
  const rows = await sql<{ network_address: string }[]>`
    SELECT DISTINCT r.network_address
    FROM jobs j
    JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
    JOIN resources r ON r.resource_id = ar.resource_id
    WHERE j.job_id = ${jobId} AND r.type = 'default' AND r.network_address <> ''`;
  return sortHosts(rows.map((r) => r.network_address));
}

/**
 * `get_job_suspended_sum_duration`: seconds spent Suspended or Resuming; a still-open row
 * counts until `now`.
 */
export async function suspendedDuration(
  sql: Queryable,
  jobId: number,
  now: number,
): Promise<number> {
  const [row] = await sql<{ total: number }[]>`
    SELECT COALESCE(SUM(GREATEST(
      CASE WHEN date_stop = 0 THEN ${now}::int ELSE date_stop END - date_start, 0)), 0)::int
      AS total
    FROM job_state_logs
    WHERE job_id = ${jobId} AND job_state IN ${sql(SUSPENDED_STATES)}`;
  return Number(row.total);
}

/**
 * `setJobState` for many jobs at once (the meta-scheduler launching hundreds): the same rules
 * per job (never out of Terminated/Error, no no-op, message only where the state changes, the
 * open state log closed and a new one opened at the time read under the row lock, and for a
 * final state the same finalisation), in ONE transaction with set-based statements. Rows are
 * locked in job id order, so that two bulk writers cannot deadlock. Returns the ids whose
 * state changed, ascending; almighty gets one `ChState` when any of them became final.
 */
export async function setJobsState(
  sql: Queryable,
  notifier: Notifier,
  jobIds: readonly number[],
  state: JobState,
  opts: SetJobStateOptions = {},
): Promise<number[]> {
  const ids = [...new Set(jobIds.map(Number))].sort((a, b) => a - b);
  if (ids.length === 0) return [];
  const final = isFinalState(state);
  const message = opts.message === undefined ? null : fitVarchar(opts.message, JOB_MESSAGE_MAX);
  const idsText = "{" + ids.join(",") + "}";
  const changed = await inTransaction(sql, async (tx) => {
    const rows = await tx<(ChangedJob & { job_id: number })[]>`
      WITH locked AS (
        SELECT job_id FROM jobs WHERE job_id = ANY(${idsText}::int[])
        ORDER BY job_id FOR UPDATE
      )
      UPDATE jobs SET
        state = ${state}::job_state,
        message = COALESCE(${message}::text, message),
        stop_time = CASE WHEN ${final}::boolean AND stop_time < start_time
                         THEN start_time ELSE stop_time END
      FROM locked
      WHERE jobs.job_id = locked.job_id
        AND jobs.state NOT IN ${tx(FINAL_STATES)}
        AND jobs.state <> ${state}::job_state
      RETURNING jobs.job_id, jobs.start_time, jobs.stop_time, jobs.assigned_moldable_job,
        jobs.suspended, EXTRACT(EPOCH FROM clock_timestamp())::int AS now`;
    if (rows.length === 0) return [];
    rows.sort((a, b) => Number(a.job_id) - Number(b.job_id));
    const done = rows.map((r) => Number(r.job_id));
    const doneText = "{" + done.join(",") + "}";
    const nowText = "{" + rows.map((r) => r.now).join(",") + "}";
    await tx`
      WITH x AS (SELECT * FROM unnest(${doneText}::int[], ${nowText}::int[]) AS x(id, now)),
      closed AS (
        UPDATE job_state_logs l SET date_stop = x.now
        FROM x WHERE l.job_id = x.id AND l.date_stop = 0
      )
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      SELECT x.id, ${state}, x.now, 0 FROM x ORDER BY x.id`;
    if (final) await finaliseMany(tx, state, rows);
    return done;
  });
  if (changed.length > 0 && final) notifier.almighty("ChState");
  return changed;
}
