/**
 * Which jobs a command acts on: explicit ids, an array (`--array`), or a `--sql` filter on the
 * `jobs` table (checked by the property parser against the real columns of `jobs`).
 */
import type { Queryable } from "../db/client.ts";
import { jobColumns } from "../properties/columns.ts";
import { type Param, parseExpression, toParameterised } from "../properties/expr.ts";

export async function arrayJobIds(sql: Queryable, arrayId: number): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`
    SELECT job_id FROM jobs WHERE array_id = ${arrayId} ORDER BY job_id`;
  return rows.map((r) => Number(r.job_id));
}

export async function sqlJobIds(sql: Queryable, filter: string): Promise<number[]> {
  const expr = parseExpression(filter, await jobColumns(sql));
  const params: Param[] = [];
  const where = toParameterised(expr, params);
  const rows = await sql.unsafe(`SELECT job_id FROM jobs WHERE ${where} ORDER BY job_id`, params);
  return rows.map((r) => Number(r.job_id));
}
