/**
 * Fairsharing (JOB_PRIORITY=FAIRSHARE, docs/modules.md §11 "Kamelot"): each waiting job gets a
 * karma from the `accounting` table over a sliding window, and jobs are scheduled lowest karma
 * first, so users and projects that consumed less than their share go ahead.
 *
 *   karma = coef_project  × (project_used / total_used  − project_target / 100)
 *         + coef_user     × (user_used    / total_used  − user_target / 100)
 *         + coef_user_ask × (user_asked   / total_asked − user_target / 100)
 *
 * Totals absent from the window count as 1 (OAR's rule: no division by zero). Departures from
 * OAR 3, on purpose: the window is `[now − size, now]` for all three sums (OAR mixes `<` and
 * `<=` on window_stop), and user targets are numbers (OAR divides the target text by 100 and
 * raises as soon as a user has a target).
 */
import type { Config } from "../../../lib/runtime/config.ts";
import type { Queryable } from "../../../lib/db/client.ts";

export interface FairshareSettings {
  /** Seconds of accounting history taken into account. */
  windowSize: number;
  /** Percentages, by project / by user. */
  projectTargets: Map<string, number>;
  userTargets: Map<string, number>;
  coefProject: number;
  coefUser: number;
  coefUserAsk: number;
}

/** Config keys and their defaults (oar.conf's documented example values, no targets). */
export const FAIRSHARE_DEFAULTS = {
  SCHEDULER_FAIRSHARING_WINDOW_SIZE: "2592000",
  SCHEDULER_FAIRSHARING_PROJECT_TARGETS: "{}",
  SCHEDULER_FAIRSHARING_USER_TARGETS: "{}",
  SCHEDULER_FAIRSHARING_COEF_PROJECT: "0",
  SCHEDULER_FAIRSHARING_COEF_USER: "1",
  SCHEDULER_FAIRSHARING_COEF_USER_ASK: "1",
} as const;

type FairshareKey = keyof typeof FAIRSHARE_DEFAULTS;

/**
 * Parses OAR's Perl-hash text `{name => 75, other => 25}` (quotes around names allowed).
 * Entries that are not `name => number` are ignored rather than fatal: a typo in oar.conf
 * must not stop scheduling. Returns the entries and the ignored parts (for the log).
 */
export function parseTargets(text: string): { targets: Map<string, number>; bad: string[] } {
  const targets = new Map<string, number>();
  const bad: string[] = [];
  const body = text.trim().replace(/^\{/, "").replace(/\}$/, "");
  for (const part of body.split(",")) {
    if (part.trim() === "") continue;
    const m = /^\s*['"]?([^'"=\s]+)['"]?\s*=>\s*['"]?([-+0-9.eE]+)['"]?\s*$/.exec(part);
    const value = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(value)) bad.push(part.trim());
    else targets.set(m[1], value);
  }
  return { targets, bad };
}

/** Reads the fairsharing keys, each with its default when unset or unreadable. */
export function fairshareSettings(
  config: Config,
  warn: (msg: string) => void = () => {},
): FairshareSettings {
  const text = (key: FairshareKey): string => {
    const v = config.str(key).trim();
    return v === "" ? FAIRSHARE_DEFAULTS[key] : v;
  };
  const num = (key: FairshareKey): number => {
    const n = Number(text(key));
    if (Number.isFinite(n)) return n;
    warn(`${key}="${text(key)}" is not a number; using ${FAIRSHARE_DEFAULTS[key]}`);
    return Number(FAIRSHARE_DEFAULTS[key]);
  };
  const targets = (key: FairshareKey): Map<string, number> => {
    const { targets, bad } = parseTargets(text(key));
    if (bad.length > 0) warn(`${key}: ignored entries ${bad.join("; ")}`);
    return targets;
  };
  return {
    windowSize: Math.max(0, Math.trunc(num("SCHEDULER_FAIRSHARING_WINDOW_SIZE"))),
    projectTargets: targets("SCHEDULER_FAIRSHARING_PROJECT_TARGETS"),
    userTargets: targets("SCHEDULER_FAIRSHARING_USER_TARGETS"),
    coefProject: num("SCHEDULER_FAIRSHARING_COEF_PROJECT"),
    coefUser: num("SCHEDULER_FAIRSHARING_COEF_USER"),
    coefUserAsk: num("SCHEDULER_FAIRSHARING_COEF_USER_ASK"),
  };
}

/** Consumption sums over the window, per type (ASKED/USED). */
export interface Consumption {
  totalAsked: number;
  totalUsed: number;
  projectUsed: Map<string, number>;
  userUsed: Map<string, number>;
  userAsked: Map<string, number>;
}

/** Sums the `accounting` rows of the queues inside `[now − windowSize, now]`, in one query. */
export async function loadConsumption(
  sql: Queryable,
  queues: readonly string[],
  now: number,
  windowSize: number,
): Promise<Consumption> {
  const rows = await sql<
    { who: string; name: string; consumption_type: string; total: string | number }[]
  >`
    SELECT 'project' AS who, accounting_project AS name, consumption_type,
      SUM(consumption) AS total
    FROM accounting
    WHERE queue_name IN ${sql(queues)} AND window_start >= ${now - windowSize}
      AND window_stop <= ${now}
    GROUP BY accounting_project, consumption_type
    UNION ALL
    SELECT 'user', accounting_user, consumption_type, SUM(consumption)
    FROM accounting
    WHERE queue_name IN ${sql(queues)} AND window_start >= ${now - windowSize}
      AND window_stop <= ${now}
    GROUP BY accounting_user, consumption_type`;
  const c: Consumption = {
    totalAsked: 0,
    totalUsed: 0,
    projectUsed: new Map(),
    userUsed: new Map(),
    userAsked: new Map(),
  };
  for (const r of rows) {
    const v = Number(r.total);
    const asked = r.consumption_type === "ASKED";
    if (r.who === "project") {
      // Every row belongs to exactly one project: the totals are the projects' sums.
      if (asked) c.totalAsked += v;
      else {
        c.totalUsed += v;
        c.projectUsed.set(r.name, v);
      }
    } else (asked ? c.userAsked : c.userUsed).set(r.name, v);
  }
  if (c.totalAsked === 0) c.totalAsked = 1;
  if (c.totalUsed === 0) c.totalUsed = 1;
  return c;
}

/** The karma of one job (user, project) given the window's consumption. */
export function karmaOf(
  job: { user: string; project: string },
  c: Consumption,
  s: FairshareSettings,
): number {
  const projectTarget = (s.projectTargets.get(job.project) ?? 0) / 100;
  const userTarget = (s.userTargets.get(job.user) ?? 0) / 100;
  return s.coefProject * ((c.projectUsed.get(job.project) ?? 0) / c.totalUsed - projectTarget) +
    s.coefUser * ((c.userUsed.get(job.user) ?? 0) / c.totalUsed - userTarget) +
    s.coefUserAsk * ((c.userAsked.get(job.user) ?? 0) / c.totalAsked - userTarget);
}

/**
 * Karma of every job and the jobs sorted by it, lowest first; equal karmas keep their given
 * (FIFO) order.
 */
export function sortByKarma<T extends { jobId: number; user: string; project: string }>(
  jobs: readonly T[],
  c: Consumption,
  s: FairshareSettings,
): { ordered: T[]; karma: Map<number, number> } {
  const karma = new Map<number, number>();
  for (const j of jobs) karma.set(j.jobId, karmaOf(j, c, s));
  const ordered = jobs.map((j, i) => ({ j, i, k: karma.get(j.jobId)! }))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.j);
  return { ordered, karma };
}

/** The job-message suffix OAR writes under fairsharing. */
export function karmaText(karma: number): string {
  return `Karma=${karma.toFixed(3)}`;
}

/** Stores jobs.last_karma of the given jobs, one statement. */
export async function saveKarma(tx: Queryable, karma: Map<number, number>): Promise<void> {
  if (karma.size === 0) return;
  const ids = [...karma.keys()];
  const values = ids.map((id) => karma.get(id)!);
  await tx`
    UPDATE jobs SET last_karma = x.k
    FROM unnest(${ids}::int[], ${values}::real[]) AS x(id, k)
    WHERE jobs.job_id = x.id`;
}
