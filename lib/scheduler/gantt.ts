/**
 * The Gantt tables (`gantt_jobs_predictions`, `gantt_jobs_resources` and their `_visu` copies):
 * flushed and rebuilt every round (spec §11 step 2), written in bulk (arrays unnested in one
 * statement per table, whatever the number of jobs).
 */
import type { Queryable } from "../db/client.ts";

/** States of jobs that hold their resources now (re-inserted at their start time). */
export const CURRENT_STATES = [
  "Running",
  "toLaunch",
  "Launching",
  "Finishing",
  "Suspended",
  "Resuming",
] as const;

export interface GanttJob {
  jobId: number;
  moldableId: number;
  /** Gantt start. */
  start: number;
  /** Moldable walltime (no security time). */
  walltime: number;
  /** Seconds spent suspended, which extend the job's occupation. */
  suspendedFor: number;
  state: string;
  queue: string;
  reservation: string;
  /** jobs.start_time (for reservations: the requested start). */
  jobStart: number;
  besteffort: boolean;
  user: string;
  name: string | null;
  types: string[];
  rids: number[];
}

/**
 * Step 2: keeps only the rows of accepted reservations that have not started
 * (Waiting/toAckReservation with reservation Scheduled), then re-inserts the jobs that hold
 * resources now, from assigned_resources, at their start time.
 *
 * The tables are emptied with TRUNCATE and the few kept rows put back: deleting the previous
 * round's ~10^5 rows row by row leaves as many dead index entries, which made every insert of
 * the round several times slower. TRUNCATE locks the tables until the round's transaction
 * commits; only the meta-scheduler reads them (readers use the `_visu` copies).
 */
export async function resetGantt(tx: Queryable): Promise<void> {
  const kept = tx`
    SELECT m.moldable_id FROM jobs j
    JOIN moldable_job_descriptions m ON m.moldable_job_id = j.job_id
    WHERE j.reservation = 'Scheduled' AND j.state IN ('Waiting', 'toAckReservation')`;
  const preds = await tx<{ moldable_job_id: number; start_time: number }[]>`
    SELECT moldable_job_id, start_time FROM gantt_jobs_predictions
    WHERE moldable_job_id IN (${kept})`;
  const res = await tx<{ moldable_job_id: number; resource_id: number }[]>`
    SELECT moldable_job_id, resource_id FROM gantt_jobs_resources
    WHERE moldable_job_id IN (${kept})`;
  await tx`TRUNCATE gantt_jobs_predictions, gantt_jobs_resources`;
  if (preds.length > 0) {
    await tx`
      INSERT INTO gantt_jobs_predictions (moldable_job_id, start_time)
      SELECT * FROM unnest(${preds.map((r) => r.moldable_job_id)}::int[],
                           ${preds.map((r) => r.start_time)}::int[])`;
  }
  if (res.length > 0) {
    await tx`
      INSERT INTO gantt_jobs_resources (moldable_job_id, resource_id)
      SELECT * FROM unnest(${res.map((r) => r.moldable_job_id)}::int[],
                           ${res.map((r) => r.resource_id)}::int[])`;
  }
  await tx`
    INSERT INTO gantt_jobs_predictions (moldable_job_id, start_time)
    SELECT j.assigned_moldable_job, j.start_time FROM jobs j
    WHERE j.state IN ${tx(CURRENT_STATES)} AND j.assigned_moldable_job > 0
    ON CONFLICT (moldable_job_id) DO UPDATE SET start_time = EXCLUDED.start_time`;
  await tx`
    INSERT INTO gantt_jobs_resources (moldable_job_id, resource_id)
    SELECT ar.moldable_job_id, ar.resource_id FROM jobs j
    JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
    WHERE j.state IN ${tx(CURRENT_STATES)} AND j.assigned_moldable_job > 0
      AND ar.assigned_resource_index = 'CURRENT'
    ON CONFLICT DO NOTHING`;
}

/** Every job of the Gantt, with its resources and what the scheduler needs to know of it. */
export async function loadGanttJobs(tx: Queryable, now: number): Promise<GanttJob[]> {
  const rows = await tx<
    {
      job_id: number;
      moldable_id: number;
      start: number;
      walltime: number;
      suspended_for: number;
      state: string;
      queue_name: string;
      reservation: string;
      job_start: number;
      job_user: string;
      job_name: string | null;
      types: string[] | null;
      rids: number[] | null;
    }[]
  >`
    SELECT j.job_id, g.moldable_job_id AS moldable_id, g.start_time AS start,
      m.moldable_walltime AS walltime, j.state, j.queue_name, j.reservation,
      j.start_time AS job_start, j.job_user, j.job_name,
      CASE WHEN j.suspended = 'YES' OR j.state IN ('Suspended', 'Resuming') THEN
        (SELECT COALESCE(SUM(GREATEST(
           CASE WHEN l.date_stop = 0 THEN ${now}::int ELSE l.date_stop END - l.date_start, 0)), 0)
         FROM job_state_logs l
         WHERE l.job_id = j.job_id AND l.job_state IN ('Suspended', 'Resuming'))
      ELSE 0 END::int AS suspended_for,
      (SELECT array_agg(t.type::text ORDER BY t.job_type_id) FROM job_types t
       WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT') AS types,
      (SELECT array_agg(r.resource_id ORDER BY r.resource_id) FROM gantt_jobs_resources r
       WHERE r.moldable_job_id = g.moldable_job_id) AS rids
    FROM gantt_jobs_predictions g
    JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
    JOIN jobs j ON j.job_id = m.moldable_job_id
    ORDER BY g.start_time, j.job_id`;
  return rows.map((r) => {
    const types = r.types ?? [];
    return {
      jobId: Number(r.job_id),
      moldableId: Number(r.moldable_id),
      start: r.start,
      walltime: r.walltime,
      suspendedFor: r.suspended_for,
      state: r.state,
      queue: r.queue_name,
      reservation: r.reservation,
      jobStart: r.job_start,
      besteffort: r.queue_name === "besteffort" || types.includes("besteffort"),
      user: r.job_user,
      name: r.job_name,
      types,
      rids: (r.rids ?? []).map(Number),
    };
  });
}

export interface GanttRow {
  moldableId: number;
  start: number;
  rids: number[];
}

/**
 * Writes predictions and their resources: two statements, however many jobs. New moldables
 * (the usual case: the Gantt was just rebuilt without them) go in with plain INSERT and COPY;
 * should any already be there, the rows are merged as upserts instead (same end result).
 */
export async function saveGanttRows(tx: Queryable, rows: readonly GanttRow[]): Promise<void> {
  if (rows.length === 0) return;
  const molds = rows.map((r) => r.moldableId);
  const starts = rows.map((r) => r.start);
  let total = 0;
  for (const r of rows) total += r.rids.length;
  const resMold = new Int32Array(total);
  const resId = new Int32Array(total);
  let k = 0;
  for (const r of rows) {
    for (const rid of r.rids) {
      resMold[k] = r.moldableId;
      resId[k++] = rid;
    }
  }
  const molText = "{" + molds.join(",") + "}";
  const [{ present }] = await tx<{ present: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM gantt_jobs_predictions
                   WHERE moldable_job_id = ANY(${molText}::int[]))
        OR EXISTS (SELECT 1 FROM gantt_jobs_resources
                   WHERE moldable_job_id = ANY(${molText}::int[])) AS present`;
  const fresh = !present && new Set(molds).size === molds.length && uniquePairs(resMold, resId);
  if (fresh) {
    await tx`
      INSERT INTO gantt_jobs_predictions (moldable_job_id, start_time)
      SELECT * FROM unnest(${molText}::int[], ${"{" + starts.join(",") + "}"}::int[])`;
    await copyPairs(tx, resMold, resId);
    return;
  }
  await tx`
    INSERT INTO gantt_jobs_predictions (moldable_job_id, start_time)
    SELECT * FROM unnest(${molds}::int[], ${starts}::int[])
    ON CONFLICT (moldable_job_id) DO UPDATE SET start_time = EXCLUDED.start_time`;
  // Arrays travel as text literals: one string is much cheaper than 2 × total parameters.
  await tx`
    INSERT INTO gantt_jobs_resources (moldable_job_id, resource_id)
    SELECT * FROM unnest(${"{" + resMold.join(",") + "}"}::int[],
                         ${"{" + resId.join(",") + "}"}::int[])
    ON CONFLICT DO NOTHING`;
}

/** Whether the (a[i], b[i]) pairs are distinct (rows of one moldable are consecutive). */
function uniquePairs(a: Int32Array, b: Int32Array): boolean {
  let seen = new Set<number>();
  for (let i = 0; i < a.length; i++) {
    if (i > 0 && a[i] !== a[i - 1]) seen = new Set();
    if (seen.has(b[i])) return false;
    seen.add(b[i]);
  }
  return true;
}

/** COPY of (moldable, resource) pairs into gantt_jobs_resources, in 64 KiB chunks. */
async function copyPairs(tx: Queryable, mold: Int32Array, rid: Int32Array): Promise<void> {
  const stream = await tx`COPY gantt_jobs_resources (moldable_job_id, resource_id) FROM STDIN`
    .writable();
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
    let buf = "";
    for (let i = 0; i < mold.length; i++) {
      buf += mold[i] + "\t" + rid[i] + "\n";
      if (buf.length >= 65536) {
        stream.write(buf);
        buf = "";
      }
    }
    if (buf !== "") stream.write(buf);
    stream.end();
  });
}

/** Moves a prediction's start (reservations waiting for resources, late starts). */
export async function setGanttStart(tx: Queryable, moldableId: number, start: number) {
  await tx`UPDATE gantt_jobs_predictions SET start_time = ${start}
    WHERE moldable_job_id = ${moldableId}`;
}

/**
 * Step 9: the `_visu` tables become a copy of the Gantt. TRUNCATE, not DELETE, for the reason
 * given at resetGantt; readers wait for this short transaction instead of seeing a half copy.
 */
export async function copyGanttToVisu(tx: Queryable): Promise<void> {
  await tx`TRUNCATE gantt_jobs_predictions_visu, gantt_jobs_resources_visu`;
  await tx`INSERT INTO gantt_jobs_predictions_visu SELECT * FROM gantt_jobs_predictions`;
  await tx`INSERT INTO gantt_jobs_resources_visu SELECT * FROM gantt_jobs_resources`;
}
