/**
 * Whether a resource request can ever be satisfied by the platform, and how many resources it
 * takes (OAR's estimate_job_nb_resources, shown as R= in the job message). The resources that
 * match the job's and the group's properties (Dead ones excepted) are read once per group, and
 * the hierarchy `/a=2/b=4` is checked in memory: 2 distinct values of `a`, each holding 4
 * distinct values of `b` among the matching resources.
 */
import type { Queryable } from "../db/client.ts";
import { andAll, type Expr, type Param, toParameterised } from "../properties/expr.ts";
import { ALL, type Moldable, type ResourceLevel } from "./resource_request.ts";

type Row = Record<string, unknown>;

/** Resources taken by the first feasible choice at `levels[i..]`, or null if none. */
function pick(rows: Row[], levels: ResourceLevel[], i: number): number | null {
  if (i === levels.length) return rows.length;
  const { resource, value } = levels[i];
  const byValue = new Map<unknown, Row[]>();
  for (const r of rows) {
    const k = r[resource];
    const list = byValue.get(k);
    if (list) list.push(r);
    else byValue.set(k, [r]);
  }
  const feasible: number[] = [];
  for (const sub of byValue.values()) {
    const n = pick(sub, levels, i + 1);
    if (n !== null) feasible.push(n);
  }
  if (feasible.length === 0) return null;
  let need: number;
  if (value === ALL) need = feasible.length;
  else if (value < 0) need = feasible.length; // BEST: as many as exist
  else need = value;
  if (feasible.length < need) return null;
  return feasible.slice(0, need).reduce((a, b) => a + b, 0);
}

/** The resources a moldable needs (sum over its groups), or null when it can never run. */
export async function estimateMoldable(
  sql: Queryable,
  jobProperties: Expr | null,
  groupProperties: (Expr | null)[],
  moldable: Moldable,
): Promise<number | null> {
  let total = 0;
  for (let g = 0; g < moldable.groups.length; g++) {
    const group = moldable.groups[g];
    const filter = andAll([jobProperties, groupProperties[g]]);
    const params: Param[] = [];
    const where = filter ? `AND (${toParameterised(filter, params)})` : "";
    // Level names are validated column names (resource_request.ts); quoted all the same.
    const cols = [...new Set(group.resources.map((l) => l.resource))]
      .map((c) => `"${c}"`).join(", ");
    const rows = await sql.unsafe(
      `SELECT ${cols} FROM resources WHERE state <> 'Dead' ${where} ORDER BY resource_id`,
      params,
    ) as unknown as Row[];
    const n = pick(rows, group.resources, 0);
    if (n === null) return null;
    total += n;
  }
  return total;
}
