/**
 * The event log (docs/modules.md §12.4): `event_logs` rows, optionally tagged with host names in
 * `event_log_hostnames`, consumed by NodeChangeState through the `to_check` flag.
 *
 * Also home of `inTransaction`, the one way the state-changing operations of lib/ (events,
 * jobs, frag, resources) open their transaction, so that each of them is atomic on its own and
 * still composes inside a caller's transaction.
 */
import type { Queryable, Sql, TxSql } from "../db/client.ts";

/** `event_logs.description` is varchar(255); OAR truncates rather than failing. */
export const EVENT_DESCRIPTION_MAX = 255;

export interface NewEvent {
  type: string;
  /** 0 for events about no job (LOG_SUSPECTED, FINAUD_*...). */
  jobId: number;
  description: string;
  /** One `event_log_hostnames` row per distinct non-empty host. */
  hosts?: readonly string[];
}

export interface EventRow {
  event_id: number;
  type: string;
  job_id: number;
  date: number;
  description: string;
  to_check: "YES" | "NO";
  /** Sorted (byte order), so that "the first host" means the same thing everywhere. */
  hostnames: string[];
}

/**
 * Runs `fn` in one transaction: a new one on a pool (or a reserved connection), or the
 * caller's own when `sql` already is a transaction, so that several operations can be made
 * atomic together. Operations that notify almighty do so when they return: a caller composing
 * them in its own transaction should hand them a RecordingNotifier and forward its messages
 * after commit, or almighty may look before the change is visible.
 */
export async function inTransaction<T>(
  sql: Queryable,
  fn: (tx: TxSql) => Promise<T>,
): Promise<T> {
  if ("savepoint" in sql && typeof sql.savepoint === "function") return await fn(sql as TxSql);
  if (typeof (sql as Sql).begin === "function") {
    return await (sql as Sql).begin((tx) => fn(tx)) as T;
  }
  // A reserved connection (sql.reserve()) has no begin(): drive the transaction by hand.
  await sql`BEGIN`;
  try {
    const result = await fn(sql as unknown as TxSql);
    await sql`COMMIT`;
    return result;
  } catch (e) {
    await sql`ROLLBACK`;
    throw e;
  }
}

/**
 * Fits a user-influenced string into a varchar(n) column: PostgreSQL cannot store NUL at all,
 * and counts characters (code points), so the cut must not split a surrogate pair.
 */
export function fitVarchar(s: string, max: number): string {
  const clean = s.includes("\0") ? s.replaceAll("\0", "") : s;
  if (clean.length <= max) return clean;
  const cps = Array.from(clean);
  return cps.length <= max ? clean : cps.slice(0, max).join("");
}

function distinctHosts(hosts: readonly string[] | undefined): string[] {
  return [...new Set((hosts ?? []).filter((h) => h !== ""))];
}

/**
 * Inserts an event (to_check YES) and its host names in one statement; returns its id.
 * `date` is for callers that already read the clock in their transaction, so that the event
 * carries the same second as the change it reports; otherwise the database clock is used.
 */
export async function insertEvent(sql: Queryable, ev: NewEvent, date?: number): Promise<number> {
  const description = fitVarchar(ev.description, EVENT_DESCRIPTION_MAX);
  const hosts = distinctHosts(ev.hosts);
  const [row] = await sql<{ event_id: number }[]>`
    WITH e AS (
      INSERT INTO event_logs (type, job_id, date, description, to_check)
      VALUES (${ev.type}, ${ev.jobId},
        COALESCE(${date ?? null}::int, EXTRACT(EPOCH FROM now())::int), ${description}, 'YES')
      RETURNING event_id
    ), h AS (
      INSERT INTO event_log_hostnames (event_id, hostname)
      SELECT e.event_id, x.host FROM e, unnest(${hosts}::text[]) AS x(host)
    )
    SELECT event_id FROM e`;
  return Number(row.event_id);
}

/**
 * Many events in one statement (to_check YES, the database clock), in the given order, with
 * their host names: what `insertEvent` does for each, for a batch of jobs ending together.
 */
export async function insertEvents(sql: Queryable, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = JSON.stringify(events.map((ev) => ({
    type: ev.type,
    job_id: ev.jobId,
    description: fitVarchar(ev.description, EVENT_DESCRIPTION_MAX),
    hosts: distinctHosts(ev.hosts),
  })));
  // Ids are drawn in the given order (NodeChangeState acts on events in id order), once
  // (MATERIALIZED), and tie each event to its hosts.
  await sql`
    WITH x AS MATERIALIZED (
      SELECT nextval(pg_get_serial_sequence('event_logs', 'event_id')) AS event_id, o.*
      FROM (
        SELECT v->>'type' AS type, (v->>'job_id')::int AS job_id,
          v->>'description' AS description, v->'hosts' AS hosts
        FROM json_array_elements(${rows}::text::json) WITH ORDINALITY AS a(v, n)
        ORDER BY n
      ) o
    ), e AS (
      INSERT INTO event_logs (event_id, type, job_id, date, description, to_check)
      SELECT event_id, type, job_id, EXTRACT(EPOCH FROM now())::int, description, 'YES' FROM x
    )
    INSERT INTO event_log_hostnames (event_id, hostname)
    SELECT DISTINCT x.event_id, h.host FROM x CROSS JOIN json_array_elements_text(x.hosts) AS h(host)`;
}

/** `add_new_event` / `add_new_event_with_host`: one statement, hence atomic on its own. */
export async function addEvent(sql: Queryable, ev: NewEvent): Promise<number> {
  return await insertEvent(sql, ev);
}

const EVENT_COLUMNS_WITH_HOSTS = (sql: Queryable) =>
  sql`
    e.event_id, e.type, e.job_id, e.date, e.description, e.to_check,
    COALESCE(
      (SELECT array_agg(h.hostname::text ORDER BY h.hostname COLLATE "C")
       FROM event_log_hostnames h WHERE h.event_id = e.event_id),
      '{}'::text[]) AS hostnames`;

/** Events still to be handled by NodeChangeState, oldest first (a snapshot). */
export async function toCheckEvents(sql: Queryable): Promise<EventRow[]> {
  const rows = await sql<EventRow[]>`
    SELECT ${EVENT_COLUMNS_WITH_HOSTS(sql)}
    FROM event_logs e WHERE e.to_check = 'YES' ORDER BY e.event_id`;
  return rows.map(normalise);
}

/** Events of a job, oldest first, optionally of one type (for reports and tests). */
export async function jobEvents(sql: Queryable, jobId: number, type?: string): Promise<EventRow[]> {
  const rows = await sql<EventRow[]>`
    SELECT ${EVENT_COLUMNS_WITH_HOSTS(sql)}
    FROM event_logs e
    WHERE e.job_id = ${jobId} AND (${type ?? null}::text IS NULL OR e.type = ${type ?? null})
    ORDER BY e.event_id`;
  return rows.map(normalise);
}

function normalise(r: EventRow): EventRow {
  return { ...r, event_id: Number(r.event_id), hostnames: [...r.hostnames] };
}

/**
 * `check_event`: marks every still-unchecked event of this (type, job) as handled, so that a
 * burst of identical events is acted on once. Returns how many rows were marked.
 */
export async function checkEvent(sql: Queryable, type: string, jobId: number): Promise<number> {
  const r = await sql`
    UPDATE event_logs SET to_check = 'NO'
    WHERE type = ${type} AND job_id = ${jobId} AND to_check = 'YES'`;
  return r.count;
}

/** `is_an_event_exists`: whether the job has at least one event of this type. */
export async function eventExists(sql: Queryable, jobId: number, type: string): Promise<boolean> {
  const [row] = await sql<{ found: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM event_logs WHERE job_id = ${jobId} AND type = ${type}) AS found`;
  return row.found;
}

/** `get_hostname_event`: the hosts attached to an event, sorted. */
export async function eventHostnames(sql: Queryable, eventId: number): Promise<string[]> {
  const rows = await sql<{ hostname: string }[]>`
    SELECT hostname FROM event_log_hostnames WHERE event_id = ${eventId}
    ORDER BY hostname COLLATE "C"`;
  return rows.map((r) => r.hostname);
}
