/**
 * Resource states (docs/modules.md §12.3, §13.2). `state` changes always go with their
 * `resource_logs` row (the open one closed, a new one opened) in the same transaction; requests for
 * a later change are written to `next_state` and applied by NodeChangeState.
 *
 * Locking: resource rows are locked in resource_id order (SELECT ... ORDER BY ... FOR UPDATE)
 * before they are changed, here and in setJobState, so that transactions touching overlapping
 * sets of resources queue up instead of deadlocking. The log statements run after the lock, in
 * a statement of their own: under READ COMMITTED a statement sees what was committed before it
 * started, so the open log row written by a writer we waited for is the one we close.
 */
import type { Queryable, TxSql } from "../db/client.ts";
import { inTransaction } from "../job/events.ts";

export const RESOURCE_STATES = ["Alive", "Absent", "Suspected", "Dead"] as const;
export type ResourceState = typeof RESOURCE_STATES[number];
export type NextState = ResourceState | "UnChanged";
export type YesNo = "YES" | "NO";

/** `resources.state_num`, used by the scheduler to order resources. */
export const STATE_NUM: Readonly<Record<ResourceState, number>> = {
  Alive: 1,
  Absent: 2,
  Suspected: 3,
  Dead: 4,
};

/** A `resources` row; sites may add property columns, hence the index signature. */
export interface Resource {
  resource_id: number;
  type: string;
  network_address: string;
  state: ResourceState;
  next_state: NextState;
  finaud_decision: YesNo;
  next_finaud_decision: YesNo;
  state_num: number;
  suspended_jobs: YesNo;
  scheduler_priority: number;
  cpuset: string;
  besteffort: YesNo;
  deploy: YesNo;
  expiry_date: number;
  desktop_computing: YesNo;
  last_job_date: number;
  available_upto: number;
  last_available_upto: number;
  drain: YesNo;
  [property: string]: unknown;
}

/**
 * Applies `state` to the locked resources `ids` that `guard` lets through and whose
 * (state, finaud_decision) is not already the target, and writes their logs. Set-based: three
 * statements whatever the number of resources. Returns the ids changed, ascending.
 */
async function applyState(
  tx: TxSql,
  ids: number[],
  state: ResourceState,
  finaudDecision: YesNo,
  suspectGuard: boolean,
): Promise<number[]> {
  if (ids.length === 0) return [];
  const changed = await tx<{ resource_id: number; now: number }[]>`
    UPDATE resources
    SET state = ${state}, finaud_decision = ${finaudDecision}, state_num = ${STATE_NUM[state]}
    WHERE resource_id = ANY(${ids}::int[])
      AND (state <> ${state} OR finaud_decision <> ${finaudDecision})
      AND (NOT ${suspectGuard}::boolean
           OR state = 'Alive' OR (state = 'Suspected' AND finaud_decision = 'YES'))
    RETURNING resource_id, EXTRACT(EPOCH FROM clock_timestamp())::int AS now`;
  if (changed.length === 0) return [];
  const now = changed[0].now;
  const changedIds = changed.map((r) => Number(r.resource_id)).sort((a, b) => a - b);
  await tx`
    WITH closed AS (
      UPDATE resource_logs SET date_stop = ${now}
      WHERE resource_id = ANY(${changedIds}::int[]) AND attribute = 'state' AND date_stop = 0
    )
    INSERT INTO resource_logs (resource_id, attribute, value, date_start, date_stop,
      finaud_decision)
    SELECT rid, 'state', ${state}, ${now}, 0, ${finaudDecision}
    FROM unnest(${changedIds}::int[]) AS rid`;
  return changedIds;
}

/**
 * `set_resource_state`: state, finaud_decision and state_num of one resource, with its log.
 * A resource already in that state with that decision is left alone (no duplicate log row).
 * Returns whether it changed.
 */
export async function setResourceState(
  sql: Queryable,
  resourceId: number,
  state: ResourceState,
  finaudDecision: YesNo,
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    const locked = await tx<{ resource_id: number }[]>`
      SELECT resource_id FROM resources WHERE resource_id = ${resourceId} FOR UPDATE`;
    const ids = locked.map((r) => Number(r.resource_id));
    return (await applyState(tx, ids, state, finaudDecision, false)).length === 1;
  });
}

/**
 * `set_node_state`: the same for every resource of `host`, in one transaction. Per
 * docs/differences.md §3, a transition to Suspected applies only to resources currently Alive, or
 * Suspected by node checking (finaud_decision YES: an event's verdict then replaces finaud's);
 * Dead and Absent resources stay as they are. Returns the ids actually changed, ascending.
 */
export async function setNodeState(
  sql: Queryable,
  host: string,
  state: ResourceState,
  finaudTag: YesNo,
): Promise<number[]> {
  return await inTransaction(sql, async (tx) => {
    const locked = await tx<{ resource_id: number }[]>`
      SELECT resource_id FROM resources WHERE network_address = ${host}
      ORDER BY resource_id FOR UPDATE`;
    const ids = locked.map((r) => Number(r.resource_id));
    return await applyState(tx, ids, state, finaudTag, state === "Suspected");
  });
}

/**
 * `set_node_nextState` (+ `update_node_nextFinaudDecision` in the same statement, so that
 * NodeChangeState never sees the request without its decision). Returns the rows updated.
 */
export async function setNodeNextState(
  sql: Queryable,
  host: string,
  next: NextState,
  nextFinaudDecision: YesNo = "NO",
): Promise<number> {
  const r = await sql`
    UPDATE resources SET next_state = ${next}, next_finaud_decision = ${nextFinaudDecision}
    WHERE network_address = ${host}`;
  return r.count;
}

/** `set_resource_nextState` (+ its next finaud decision). Returns whether the row exists. */
export async function setResourceNextState(
  sql: Queryable,
  resourceId: number,
  next: NextState,
  nextFinaudDecision: YesNo = "NO",
): Promise<boolean> {
  const r = await sql`
    UPDATE resources SET next_state = ${next}, next_finaud_decision = ${nextFinaudDecision}
    WHERE resource_id = ${resourceId}`;
  return r.count === 1;
}

export interface PendingChange {
  resource_id: number;
  network_address: string;
  state: ResourceState;
  next_state: Exclude<NextState, "UnChanged">;
  next_finaud_decision: YesNo;
}

/** `get_resources_change_state`: resources with a pending next_state, by id. */
export async function resourcesToChange(sql: Queryable): Promise<PendingChange[]> {
  const rows = await sql<PendingChange[]>`
    SELECT resource_id, network_address, state, next_state, next_finaud_decision
    FROM resources WHERE next_state <> 'UnChanged' ORDER BY resource_id`;
  return rows.map((r) => ({ ...r, resource_id: Number(r.resource_id) }));
}

export interface NewResource {
  network_address: string;
  type?: string;
  state?: ResourceState;
  /** Values of other columns (site properties such as cpu, core, host, or cpuset). */
  properties?: Record<string, string | number | null>;
}

const COLUMN_RE = /^[a-z_][a-z0-9_]*$/;
/** Columns addResource sets itself. */
const RESERVED_COLUMNS = new Set([
  "resource_id",
  "network_address",
  "type",
  "state",
  "state_num",
  "finaud_decision",
]);

/**
 * Inserts a resource with its first `resource_logs` state row (for the CLI and tests).
 * Property names are SQL identifiers: anything but a plain lower-case column name is refused,
 * and values are always parameters. Returns the new resource id.
 */
export async function addResource(sql: Queryable, r: NewResource): Promise<number> {
  const state = r.state ?? "Alive";
  const row: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(r.properties ?? {})) {
    if (!COLUMN_RE.test(k) || RESERVED_COLUMNS.has(k)) {
      throw new Error(`addResource: invalid property name ${JSON.stringify(k)}`);
    }
    row[k] = v;
  }
  Object.assign(row, {
    network_address: r.network_address,
    type: r.type ?? "default",
    state,
    state_num: STATE_NUM[state],
  });
  const [created] = await sql<{ resource_id: number }[]>`
    WITH r AS (
      INSERT INTO resources ${sql(row)} RETURNING resource_id
    ), l AS (
      INSERT INTO resource_logs (resource_id, attribute, value, date_start, date_stop,
        finaud_decision)
      SELECT resource_id, 'state', ${state}, EXTRACT(EPOCH FROM now())::int, 0, 'NO' FROM r
    )
    SELECT resource_id FROM r`;
  return Number(created.resource_id);
}

/** A resource row, or null. */
export async function getResource(sql: Queryable, resourceId: number): Promise<Resource | null> {
  const rows = await sql<Resource[]>`SELECT * FROM resources WHERE resource_id = ${resourceId}`;
  return rows.length ? { ...rows[0], resource_id: Number(rows[0].resource_id) } : null;
}
