/**
 * Property filters: the SQL fragments oarsub stores in `jobs.properties` and
 * `job_resource_groups.res_group_property` (validated at submission). Each distinct fragment is
 * evaluated once per round as `SELECT resource_id FROM resources WHERE (<fragment>)`, inside a
 * READ ONLY transaction with a statement timeout, one savepoint each: a fragment that errors
 * (or tries to write, or to run for ever) fails alone, and only its jobs are skipped.
 */
import type { Sql, TxSql } from "../../../lib/db/client.ts";
import type { Itvs } from "./intervals.ts";
import { type ResourceSet, toOrderedIds } from "./resource_set.ts";

/** What a group without property means (OAR: only the default resources). */
export const DEFAULT_GROUP_PROPERTY = "type = 'default'";

/** Milliseconds one fragment may run. */
const FILTER_TIMEOUT_MS = 5000;

export class FilterCache {
  readonly #results = new Map<string, Itvs | Error>();

  constructor(private readonly rs: ResourceSet) {}

  /** Evaluates the fragments not seen yet (empty ones mean "every resource"). */
  async load(sql: Sql, filters: Iterable<string>): Promise<void> {
    const todo = [...new Set(filters)].filter((f) => f.trim() !== "" && !this.#results.has(f));
    if (todo.length === 0) return;
    // A pool, not a caller's transaction: this one is made READ ONLY.
    await sql.begin(async (tx: TxSql) => {
      await tx.unsafe("SET TRANSACTION READ ONLY");
      await tx.unsafe(`SET LOCAL statement_timeout = ${FILTER_TIMEOUT_MS}`);
      for (const f of todo) {
        try {
          const rows = await tx.savepoint((sp) =>
            // Extended protocol (a parameter list is given): one statement only, so a fragment
            // cannot smuggle a second one after a semicolon.
            sp.unsafe<{ resource_id: number }[]>(
              `SELECT resource_id FROM resources WHERE (${f})`,
              [],
              { prepare: false },
            )
          );
          this.#results.set(f, toOrderedIds(this.rs, rows.map((r) => Number(r.resource_id))));
        } catch (e) {
          this.#results.set(f, e instanceof Error ? e : new Error(String(e)));
        }
      }
    });
  }

  /** The ordered ids a fragment selects (all for an empty one), or the error it raised. */
  get(filter: string | null | undefined): Itvs | Error {
    if (!filter || filter.trim() === "") return this.rs.schedulable;
    const r = this.#results.get(filter);
    if (r === undefined) return new Error(`filter not loaded: ${filter}`);
    return r;
  }
}
