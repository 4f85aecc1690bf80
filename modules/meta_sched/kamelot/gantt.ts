/**
 * The Gantt tables (`gantt_jobs_predictions`, `gantt_jobs_resources` and their `_visu` copies).
 *
 * docs/modules.md §11 step 2 flushes and rebuilds them every round. The result is the same here,
 * but only what changed is written: the previous round's content is read, the new one built in
 * memory (kept reservations, jobs holding resources now, this round's decisions), and the
 * difference applied, per moldable. In steady state most of a large queue keeps its prediction, so
 * a round writes a few rows instead of ~10^5 twice (tables and `_visu` copies). When most rows
 * change, the tables are truncated and rewritten in bulk (COPY) instead: deleting ~10^5 rows one by
 * one leaves as many dead index entries, which made every later insert several times slower.
 */
import type { Queryable } from "../../../lib/db/client.ts";
import { RESOURCE_HOLDING_STATES, SUSPENDED_STATES } from "../../../lib/job/states.ts";

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
  /** Ascending. */
  rids: number[];
}

/** One moldable's prediction: its start and its resources (ascending ids). */
export interface GanttEntry {
  start: number;
  rids: number[];
}

/** The content of the Gantt tables, by moldable id. */
export type GanttMap = Map<number, GanttEntry>;

/** A prediction's start in a GanttMap for resource rows without a prediction row. */
const NO_PREDICTION = -1;

/**
 * Rounds are serialised on the Gantt tables (the TRUNCATE of the flush used to do it); readers
 * are not blocked.
 */
export async function lockGantt(tx: Queryable): Promise<void> {
  await tx`LOCK TABLE gantt_jobs_predictions, gantt_jobs_resources IN EXCLUSIVE MODE`;
}

/** The current content of the Gantt tables (resource rows without prediction included). */
export async function loadGanttMap(tx: Queryable): Promise<GanttMap> {
  const rows = await tx<{ m: number; start: number | null; rids: string | null }[]>`
    SELECT COALESCE(p.moldable_job_id, r.moldable_job_id) AS m, p.start_time AS start,
      r.rids::text AS rids
    FROM gantt_jobs_predictions p
    FULL JOIN (SELECT moldable_job_id, array_agg(resource_id) AS rids
               FROM gantt_jobs_resources GROUP BY moldable_job_id) r
      ON r.moldable_job_id = p.moldable_job_id`;
  const map: GanttMap = new Map();
  for (const r of rows) {
    // Sorted here: an ordered aggregate costs PostgreSQL a sort of the whole table.
    const rids = parseIntArray(r.rids).sort((a, b) => a - b);
    map.set(Number(r.m), { start: r.start ?? NO_PREDICTION, rids });
  }
  return map;
}

/** `{1,2,3}` → [1, 2, 3] (much cheaper than the driver's generic array parser). */
function parseIntArray(text: string | null): number[] {
  if (text === null || text.length <= 2) return [];
  const out: number[] = [];
  let n = 0;
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n = n * 10 + (c - 48);
    else {
      out.push(n);
      n = 0;
    }
  }
  return out;
}

/**
 * The jobs the Gantt starts from (step 2): accepted reservations that have not started
 * (Waiting/toAckReservation, reservation Scheduled), at their current prediction in `old`, and
 * the jobs holding resources now, from assigned_resources, at their start time.
 */
export async function loadBaseGantt(
  tx: Queryable,
  old: GanttMap,
  now: number,
): Promise<GanttJob[]> {
  const rows = await tx<
    {
      job_id: number;
      moldable_id: number;
      current: boolean;
      walltime: number;
      suspended_for: number;
      state: string;
      queue_name: string;
      reservation: string;
      job_start: number;
      job_user: string;
      job_name: string | null;
      types: string[] | null;
      rids: string | null;
    }[]
  >`
    WITH base AS (
      SELECT j.job_id, j.assigned_moldable_job AS moldable_id, true AS current FROM jobs j
      WHERE j.state IN ${tx(RESOURCE_HOLDING_STATES)} AND j.assigned_moldable_job > 0
      UNION ALL
      SELECT j.job_id, m.moldable_id, false FROM jobs j
      JOIN moldable_job_descriptions m ON m.moldable_job_id = j.job_id
      WHERE j.reservation = 'Scheduled' AND j.state IN ('Waiting', 'toAckReservation')
    )
    SELECT b.job_id, b.moldable_id, b.current, m.moldable_walltime AS walltime, j.state,
      j.queue_name, j.reservation, j.start_time AS job_start, j.job_user, j.job_name,
      CASE WHEN j.suspended = 'YES' OR j.state IN ${tx(SUSPENDED_STATES)} THEN
        (SELECT COALESCE(SUM(GREATEST(
           CASE WHEN l.date_stop = 0 THEN ${now}::int ELSE l.date_stop END - l.date_start, 0)), 0)
         FROM job_state_logs l
         WHERE l.job_id = j.job_id AND l.job_state IN ${tx(SUSPENDED_STATES)})
      ELSE 0 END::int AS suspended_for,
      (SELECT array_agg(t.type::text ORDER BY t.job_type_id) FROM job_types t
       WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT') AS types,
      CASE WHEN b.current THEN
        (SELECT array_agg(ar.resource_id ORDER BY ar.resource_id)::text
         FROM assigned_resources ar
         -- ::text keeps the planner off the index on assigned_resource_index, which it
         -- ANDs with the moldable's (~100 times slower) when statistics are behind.
         WHERE ar.moldable_job_id = b.moldable_id
           AND ar.assigned_resource_index::text = 'CURRENT')
      END AS rids
    FROM base b
    JOIN jobs j ON j.job_id = b.job_id
    JOIN moldable_job_descriptions m ON m.moldable_id = b.moldable_id`;
  // A reservation is kept where it is: with its prediction of the previous round, if any.
  const kept = rows.filter((r) => {
    if (r.current) return true;
    const prev = old.get(Number(r.moldable_id));
    return prev !== undefined && prev.start !== NO_PREDICTION;
  });
  const out = kept.map((r): GanttJob => {
    const types = r.types ?? [];
    const moldableId = Number(r.moldable_id);
    const prev = old.get(moldableId);
    return {
      jobId: Number(r.job_id),
      moldableId,
      start: r.current ? r.job_start : prev!.start,
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
      rids: r.current ? parseIntArray(r.rids) : prev!.rids.slice(),
    };
  });
  return out.sort((a, b) => a.start - b.start || a.jobId - b.jobId);
}

/** What turns one Gantt content into another. */
export interface GanttDelta {
  /** Rewrite everything (most rows changed): truncate, then insert `next` whole. */
  full: boolean;
  /** Moldables whose prediction row goes. */
  predDeleted: number[];
  /** Prediction rows inserted or updated (moldable, start). */
  predMolds: number[];
  predStarts: number[];
  /** Moldables whose resource rows all go (gone, or their resources changed). */
  resDeleted: number[];
  /** Resource rows inserted (moldable, resource). */
  resMolds: Int32Array;
  resIds: Int32Array;
  /** Rows of `next` (for the full rewrite and the report). */
  total: number;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The difference between two Gantt contents. Beyond half of the rows changed (and a few
 * thousands), a full rewrite is cheaper and leaves no dead rows behind.
 */
export function diffGantt(old: GanttMap, next: GanttMap, fullAbove = 5000): GanttDelta {
  const predDeleted: number[] = [], predMolds: number[] = [], predStarts: number[] = [];
  const resDeleted: number[] = [];
  const added: number[] = [];
  let oldRows = 0, deletedRows = 0, addedRows = 0, total = 0;
  for (const [m, e] of old) {
    oldRows += e.rids.length;
    if (next.has(m)) continue;
    if (e.start !== NO_PREDICTION) predDeleted.push(m);
    if (e.rids.length > 0) {
      resDeleted.push(m);
      deletedRows += e.rids.length;
    }
  }
  for (const [m, e] of next) {
    total += e.rids.length;
    const prev = old.get(m);
    if (prev === undefined || prev.start !== e.start) {
      predMolds.push(m);
      predStarts.push(e.start);
    }
    if (prev !== undefined && sameIds(prev.rids, e.rids)) continue;
    if (prev !== undefined && prev.rids.length > 0) {
      resDeleted.push(m);
      deletedRows += prev.rids.length;
    }
    added.push(m);
    addedRows += e.rids.length;
  }
  const full = deletedRows > fullAbove && deletedRows * 2 > oldRows;
  const source = full ? [...next.keys()] : added;
  const rows = full ? total : addedRows;
  const resMolds = new Int32Array(rows), resIds = new Int32Array(rows);
  let k = 0;
  for (const m of source) {
    for (const r of next.get(m)!.rids) {
      resMolds[k] = m;
      resIds[k++] = r;
    }
  }
  if (full) {
    predMolds.length = 0;
    predStarts.length = 0;
    for (const [m, e] of next) {
      predMolds.push(m);
      predStarts.push(e.start);
    }
  }
  return { full, predDeleted, predMolds, predStarts, resDeleted, resMolds, resIds, total };
}

/** Whether a delta changes nothing. */
export function emptyDelta(d: GanttDelta): boolean {
  return !d.full && d.predDeleted.length === 0 && d.predMolds.length === 0 &&
    d.resDeleted.length === 0 && d.resMolds.length === 0;
}

const TABLES = {
  gantt: { pred: "gantt_jobs_predictions", res: "gantt_jobs_resources" },
  visu: { pred: "gantt_jobs_predictions_visu", res: "gantt_jobs_resources_visu" },
} as const;

/**
 * Applies a delta to the Gantt tables or to their `_visu` copies (resources, predictions).
 * `written`: moldables new to the table whose resource rows were already streamed in
 * (openPairsCopy), left out.
 */
export async function applyGanttDelta(
  tx: Queryable,
  delta: GanttDelta,
  which: keyof typeof TABLES,
  parts: { predictions?: boolean; resources?: boolean; written?: ReadonlySet<number> } = {},
): Promise<void> {
  // A full rewrite truncates first: streamed rows are gone too, and written again.
  const d = !delta.full && parts.written && parts.written.size > 0
    ? without(delta, parts.written)
    : delta;
  const t = TABLES[which];
  const doPred = parts.predictions ?? true, doRes = parts.resources ?? true;
  const ints = (a: ArrayLike<number>) => "{" + Array.prototype.join.call(a, ",") + "}";
  if (d.full) {
    if (doPred && doRes) await tx`TRUNCATE ${tx(t.pred)}, ${tx(t.res)}`;
    else if (doPred) await tx`TRUNCATE ${tx(t.pred)}`;
    else await tx`TRUNCATE ${tx(t.res)}`;
  } else {
    if (doPred && d.predDeleted.length > 0) {
      await tx`DELETE FROM ${tx(t.pred)} WHERE moldable_job_id = ANY(${
        ints(d.predDeleted)
      }::int[])`;
    }
    if (doRes && d.resDeleted.length > 0) {
      await tx`DELETE FROM ${tx(t.res)} WHERE moldable_job_id = ANY(${ints(d.resDeleted)}::int[])`;
    }
  }
  if (doPred && d.predMolds.length > 0) {
    await tx`
      INSERT INTO ${tx(t.pred)} (moldable_job_id, start_time)
      SELECT * FROM unnest(${ints(d.predMolds)}::int[], ${ints(d.predStarts)}::int[])
      ON CONFLICT (moldable_job_id) DO UPDATE SET start_time = EXCLUDED.start_time`;
  }
  if (doRes && d.resMolds.length > 0) {
    if (d.resMolds.length >= 2000) await copyPairs(tx, t.res, d.resMolds, d.resIds);
    else {
      await tx`
        INSERT INTO ${tx(t.res)} (moldable_job_id, resource_id)
        SELECT * FROM unnest(${ints(d.resMolds)}::int[], ${ints(d.resIds)}::int[])`;
    }
  }
}

/** The delta minus the resource rows of the given moldables. */
function without(d: GanttDelta, written: ReadonlySet<number>): GanttDelta {
  let n = 0;
  for (let i = 0; i < d.resMolds.length; i++) if (!written.has(d.resMolds[i])) n++;
  const resMolds = new Int32Array(n), resIds = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < d.resMolds.length; i++) {
    if (written.has(d.resMolds[i])) continue;
    resMolds[k] = d.resMolds[i];
    resIds[k++] = d.resIds[i];
  }
  return { ...d, resMolds, resIds };
}

/** COPY text of one moldable's resource rows. */
export function pairsText(moldableId: number, rids: readonly number[]): string {
  let out = "";
  for (const r of rids) out += moldableId + "\t" + r + "\n";
  return out;
}

/**
 * A COPY into a resources table kept open while the round schedules: the rows of moldables
 * new to the table go in chunk by chunk (pairsText), and PostgreSQL writes them on its own core
 * while the scheduling goes on. Nothing else may run on the connection until `end()`.
 */
export interface PairsCopy {
  write(text: string): void;
  end(): Promise<void>;
}

export async function openPairsCopy(
  tx: Queryable,
  which: keyof typeof TABLES,
): Promise<PairsCopy> {
  const stream = await tx`
    COPY ${tx(TABLES[which].res)} (moldable_job_id, resource_id) FROM STDIN`.writable();
  const done = new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
  });
  done.catch(() => {}); // awaited by end()
  return {
    write(text) {
      if (text !== "") stream.write(text);
    },
    async end() {
      stream.end();
      await done;
    },
  };
}

/** COPY text of pairs, in ~64 KiB chunks; kept, as the same rows go to the `_visu` copy. */
const copyText = new WeakMap<Int32Array, string[]>();

function copyChunks(mold: Int32Array, rid: Int32Array): string[] {
  const known = copyText.get(mold);
  if (known !== undefined) return known;
  const chunks: string[] = [];
  let buf = "";
  for (let i = 0; i < mold.length; i++) {
    buf += mold[i] + "\t" + rid[i] + "\n";
    if (buf.length >= 65536) {
      chunks.push(buf);
      buf = "";
    }
  }
  if (buf !== "") chunks.push(buf);
  copyText.set(mold, chunks);
  return chunks;
}

/** COPY of (moldable, resource) pairs into a resources table. */
async function copyPairs(
  tx: Queryable,
  table: string,
  mold: Int32Array,
  rid: Int32Array,
): Promise<void> {
  const chunks = copyChunks(mold, rid);
  const stream = await tx`COPY ${tx(table)} (moldable_job_id, resource_id) FROM STDIN`.writable();
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
    for (const c of chunks) stream.write(c);
    stream.end();
  });
}

/**
 * Whether gantt_jobs_resources_visu holds the same rows as gantt_jobs_resources: compared by
 * count and sum of row hashes (two scans, no join); equal sums of 150k 32-bit hashes for
 * different contents would be an accident of about one in 2^32.
 */
export async function visuResourcesInSync(sql: Queryable): Promise<boolean> {
  const [{ same }] = await sql<{ same: boolean }[]>`
    SELECT (SELECT count(*) || ':' || COALESCE(sum(hashint8((moldable_job_id::bigint << 32)
              | resource_id::bigint)), 0) FROM gantt_jobs_resources)
         = (SELECT count(*) || ':' || COALESCE(sum(hashint8((moldable_job_id::bigint << 32)
              | resource_id::bigint)), 0) FROM gantt_jobs_resources_visu) AS same`;
  return same;
}

/** Moves a prediction's start (late reservations at launch). */
export async function setGanttStart(tx: Queryable, moldableId: number, start: number) {
  await tx`UPDATE gantt_jobs_predictions SET start_time = ${start}
    WHERE moldable_job_id = ${moldableId}`;
}

/**
 * Readers keep reading the `_visu` copies; rounds are serialised on them too.
 */
export async function lockVisu(tx: Queryable): Promise<void> {
  await tx`LOCK TABLE gantt_jobs_predictions_visu, gantt_jobs_resources_visu IN EXCLUSIVE MODE`;
}

/**
 * Step 9, first half: gantt_jobs_resources_visu gets the Gantt's new resource rows. When it
 * held the same rows as the Gantt before the round (`inSync`, the usual case) the round's
 * delta is applied to it; otherwise (a round died half way, a table was edited) it is
 * rewritten from `next` whole. Runs in its own transaction, beside the Gantt's.
 */
export async function writeVisuResources(
  tx: Queryable,
  delta: GanttDelta,
  next: GanttMap,
  inSync: boolean,
  /** Moldables whose rows were already streamed in (with openPairsCopy), when in sync. */
  written?: ReadonlySet<number>,
): Promise<void> {
  if (inSync && !delta.full) {
    await applyGanttDelta(tx, delta, "visu", { predictions: false, written });
    return;
  }
  await tx`TRUNCATE gantt_jobs_resources_visu`;
  if (delta.full) {
    if (delta.resMolds.length > 0) {
      await copyPairs(tx, TABLES.visu.res, delta.resMolds, delta.resIds);
    }
    return;
  }
  let total = 0;
  for (const e of next.values()) total += e.rids.length;
  const molds = new Int32Array(total), ids = new Int32Array(total);
  let k = 0;
  for (const [m, e] of next) {
    for (const r of e.rids) {
      molds[k] = m;
      ids[k++] = r;
    }
  }
  if (total > 0) await copyPairs(tx, TABLES.visu.res, molds, ids);
}

/**
 * Step 9, second half (same transaction, once the round's launches are done, as they may
 * move a late reservation's start): predictions are few, they are compared with the Gantt's.
 */
export async function writeVisuPredictions(tx: Queryable): Promise<void> {
  await tx`
    DELETE FROM gantt_jobs_predictions_visu v WHERE NOT EXISTS (
      SELECT 1 FROM gantt_jobs_predictions g WHERE g.moldable_job_id = v.moldable_job_id)`;
  await tx`
    INSERT INTO gantt_jobs_predictions_visu (moldable_job_id, start_time)
    SELECT g.moldable_job_id, g.start_time FROM gantt_jobs_predictions g
    LEFT JOIN gantt_jobs_predictions_visu v ON v.moldable_job_id = g.moldable_job_id
    WHERE v.moldable_job_id IS NULL OR v.start_time <> g.start_time
    ON CONFLICT (moldable_job_id) DO UPDATE SET start_time = EXCLUDED.start_time`;
}
