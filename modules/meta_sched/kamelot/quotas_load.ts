/**
 * Quotas for one meta-scheduler round (quotas.ts holds the rules and the counting): the file
 * QUOTAS_CONF_FILE read and parsed, `ALL` resolved (QUOTAS_ALL_NB_RESOURCES_MODE), and what the
 * Gantt already holds (running jobs, accepted reservations) counted.
 *
 * A quotas file that cannot be read or parsed: OAR 3 raises in the round (a syntax error, an
 * unreadable file) or exits (a bad calendar), so nothing is scheduled until the file is fixed;
 * it never schedules without its quotas. We keep that outcome without the crash: the error is
 * logged every round, the waiting jobs stay Waiting with the reason in their message, new
 * reservations stay to be scheduled, and what was already decided (running jobs, accepted
 * reservations) goes on. Scheduling without quotas instead would let one typo hand the cluster
 * to whoever submits first, which the admin asked to prevent.
 */
import type { Config } from "../../../lib/runtime/config.ts";
import type { Queryable } from "../../../lib/db/client.ts";
import type { Logger } from "../../../lib/runtime/log.ts";
import type { GanttJob } from "./gantt.ts";
import { RESOURCE_HOLDING_STATES } from "../../../lib/job/states.ts";
import {
  countedByQuotas,
  parseQuotasFile,
  type QuotaJob,
  Quotas,
  type TemporalQuotas,
} from "./quotas.ts";
import { type ResourceSet, toOrderedIds } from "./resource_set.ts";

export interface RoundQuotas {
  /** The rules and counters, when quotas are on and their file is sound. */
  quotas: Quotas | null;
  /** Why scheduling is held this round (quotas on, file unusable), or null. */
  broken: string | null;
  /** Counts the running besteffort jobs (once they are in the Gantt: the besteffort queue). */
  countBesteffort(): void;
}

const OFF: RoundQuotas = { quotas: null, broken: null, countBesteffort: () => {} };

const CURRENT: ReadonlySet<string> = new Set(RESOURCE_HOLDING_STATES);

/** Reads the quotas of a round; never throws for a bad file or setting (see above). */
export async function loadRoundQuotas(
  sql: Queryable,
  config: Config,
  rs: ResourceSet,
  gantt: readonly GanttJob[],
  now: number,
  security: number,
  log: Logger,
): Promise<RoundQuotas> {
  const broken = (reason: string): RoundQuotas => {
    log.error("quotas: {reason}; no job is scheduled until this is fixed", { reason });
    return { ...OFF, broken: `not scheduled: quotas configuration error (${reason})` };
  };
  let on: boolean;
  try {
    on = config.bool("QUOTAS");
  } catch (e) {
    return broken((e as Error).message);
  }
  if (!on) return OFF;
  const mode = config.str("QUOTAS_ALL_NB_RESOURCES_MODE").trim();
  if (mode !== "default" && mode !== "default_not_dead") {
    return broken(
      `QUOTAS_ALL_NB_RESOURCES_MODE must be default or default_not_dead, not "${mode}"`,
    );
  }
  const path = config.str("QUOTAS_CONF_FILE");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return broken(`cannot read ${path}: ${(e as Error).message}`);
  }
  const defaults = await sql<{ resource_id: number; state: string }[]>`
    SELECT resource_id, state FROM resources WHERE type = 'default'`;
  const all = mode === "default"
    ? defaults.length
    : defaults.filter((r) => r.state !== "Dead").length;
  const parsed = parseQuotasFile(text, all);
  if (typeof parsed === "string") return broken(`${path}: ${parsed}`);
  for (const w of parsed.warnings) log.warn("quotas: {path}: {w}", { path, w });
  let temporal: TemporalQuotas | null = null;
  if (parsed.calendar !== null) {
    let limit: number;
    try {
      limit = config.int("QUOTAS_WINDOW_TIME_LIMIT");
    } catch (e) {
      return broken((e as Error).message);
    }
    if (limit <= 0) return broken(`QUOTAS_WINDOW_TIME_LIMIT must be positive, not ${limit}`);
    temporal = { sets: parsed.sets, calendar: parsed.calendar, horizon: now + limit };
  }
  const quotas = new Quotas(
    parsed.rules,
    toOrderedIds(rs, defaults.map((r) => Number(r.resource_id))),
    temporal,
  );

  // What the Gantt holds: counted over the window it occupies in the slot set (round.ts).
  const ids = gantt.map((g) => g.jobId);
  const projects = new Map<number, string>();
  if (ids.length > 0) {
    const rows = await sql<{ job_id: number; project: string | null }[]>`
      SELECT job_id, project FROM jobs WHERE job_id = ANY(${"{" + ids.join(",") + "}"}::int[])`;
    for (const r of rows) projects.set(Number(r.job_id), r.project ?? "");
  }
  const count = (g: GanttJob) => {
    const job: QuotaJob = {
      queue: g.queue,
      project: projects.get(g.jobId) ?? "",
      user: g.user,
      types: g.types,
    };
    const current = CURRENT.has(g.state);
    // A job past its walltime holds its resources until it is really gone (as in round.ts).
    const end = Math.max(
      g.start + g.walltime + security + g.suspendedFor - 1,
      current ? now : 0,
    );
    quotas.add(job, g.start, end, quotas.nbResources(toOrderedIds(rs, g.rids)), g.walltime);
  };
  // Running besteffort jobs count only once they are in the Gantt (OAR: "besteffort jobs are
  // not taken in account except in the besteffort queue").
  const besteffort: GanttJob[] = [];
  for (const g of gantt) {
    if (!countedByQuotas(g.types)) continue;
    if (g.besteffort && CURRENT.has(g.state)) besteffort.push(g);
    else count(g);
  }
  let besteffortCounted = false;
  return {
    quotas,
    broken: null,
    countBesteffort() {
      if (besteffortCounted) return;
      besteffortCounted = true;
      for (const g of besteffort) count(g);
    },
  };
}
