/**
 * The scheduler's view of the resources (docs/modules.md §11 step 2): every resource gets a dense
 * 0-based "ordered id" following SCHEDULER_RESOURCE_ORDER; only Alive and Absent ones are
 * schedulable; HIERARCHY_LABELS become the hierarchy levels; `available_upto` dates become
 * pseudo-jobs.
 */
import type { Config } from "../../../lib/runtime/config.ts";
import type { Queryable } from "../../../lib/db/client.ts";
import type { Logger } from "../../../lib/runtime/log.ts";
import { buildLevel, type Level } from "./hierarchy.ts";
import { columnTypes } from "../../../lib/properties/columns.ts";
import { fromIds, type Itvs } from "./intervals.ts";
import { MAX_TIME } from "./slots.ts";

export interface ResourceSet {
  /** ordered id → resource_id. */
  rids: Int32Array;
  /** resource_id → ordered id. */
  oids: Map<number, number>;
  /** Alive or Absent. */
  schedulable: Itvs;
  /** Absent (schedulable, but a job holding one is not launched). */
  absent: Itvs;
  /** Resources of type 'default' (the constraint of a group without property). */
  hierarchy: Map<string, Level>;
  /** available_upto (< end of time) → resources unavailable from then on. */
  availableUpto: Map<number, Itvs>;
  /** `network_address` by ordered id (hosts for events, energy saving). */
  hosts: string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The columns of `resources` (sites add their own properties). */
export async function resourceColumns(sql: Queryable): Promise<Set<string>> {
  return new Set((await columnTypes(sql, "resources")).map((r) => r.column_name));
}

/**
 * Validates SCHEDULER_RESOURCE_ORDER (`col [ASC|DESC], ...`) against the real columns and
 * returns it as safe SQL (quoted identifiers), or null when it is not acceptable. The value is
 * admin configuration, yet it is spliced into SQL: only this whitelisted shape gets through.
 */
export function resourceOrderSql(order: string, columns: ReadonlySet<string>): string | null {
  const items = order.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) return null;
  const out: string[] = [];
  for (const item of items) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(ASC|DESC))?$/i.exec(item);
    if (!m || !columns.has(m[1])) return null;
    out.push(`"${m[1]}" ${(m[2] ?? "ASC").toUpperCase()}`);
  }
  // Ties are broken by id, so that the order (hence every placement) is deterministic.
  if (!items.some((i) => /^resource_id\b/i.test(i))) out.push(`"resource_id" ASC`);
  return out.join(", ");
}

/** The hierarchy labels that are real columns (others are reported once and ignored). */
export function hierarchyLabels(
  config: Config,
  columns: ReadonlySet<string>,
  log?: Logger,
): string[] {
  const labels = config.str("HIERARCHY_LABELS").split(",").map((s) => s.trim()).filter(Boolean);
  const out: string[] = [];
  for (const l of new Set(["resource_id", ...labels])) {
    if (IDENT.test(l) && columns.has(l)) out.push(l);
    else log?.debug("hierarchy label {label} is not a resources column: ignored", { label: l });
  }
  return out;
}

export async function loadResourceSet(
  sql: Queryable,
  config: Config,
  log?: Logger,
): Promise<ResourceSet> {
  const columns = await resourceColumns(sql);
  const wanted = config.str("SCHEDULER_RESOURCE_ORDER");
  let order = resourceOrderSql(wanted, columns);
  if (order === null) {
    log?.warn(
      "SCHEDULER_RESOURCE_ORDER {order} is not a list of resource columns; using resource_id",
      {
        order: wanted,
      },
    );
    order = `"resource_id" ASC`;
  }
  const labels = hierarchyLabels(config, columns, log);
  const select = [
    ...new Set(["resource_id", "state", "available_upto", "network_address", ...labels]),
  ];
  const rows = await sql.unsafe<Record<string, unknown>[]>(
    `SELECT ${select.map((c) => `"${c}"`).join(", ")} FROM resources ORDER BY ${order}`,
  );
  const n = rows.length;
  const rids = new Int32Array(n);
  const oids = new Map<number, number>();
  const schedulable: number[] = [];
  const absent: number[] = [];
  const upto = new Map<number, number[]>();
  const hosts: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    const rid = Number(r.resource_id);
    rids[i] = rid;
    oids.set(rid, i);
    hosts[i] = String(r.network_address ?? "");
    const state = String(r.state);
    if (state === "Alive" || state === "Absent") {
      schedulable.push(i);
      if (state === "Absent") absent.push(i);
      const au = Number(r.available_upto);
      if (au < MAX_TIME) {
        const list = upto.get(au);
        if (list) list.push(i);
        else upto.set(au, [i]);
      }
    }
  }
  const hierarchy = new Map<string, Level>();
  for (const label of labels) {
    hierarchy.set(label, buildLevel(label, rows.map((r) => r[label])));
  }
  const availableUpto = new Map<number, Itvs>();
  for (const [t, ids] of upto) availableUpto.set(t, fromIds(ids));
  return {
    rids,
    oids,
    schedulable: fromIds(schedulable),
    absent: fromIds(absent),
    hierarchy,
    availableUpto,
    hosts,
  };
}

/** Ordered ids → resource ids. */
export function toResourceIds(rs: ResourceSet, s: Itvs): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 2) for (let x = s[i]; x <= s[i + 1]; x++) out.push(rs.rids[x]);
  return out;
}

/** Resource ids → ordered ids (unknown ids dropped). */
export function toOrderedIds(rs: ResourceSet, rids: Iterable<number>): Itvs {
  const out: number[] = [];
  for (const r of rids) {
    const o = rs.oids.get(Number(r));
    if (o !== undefined) out.push(o);
  }
  return fromIds(out);
}
