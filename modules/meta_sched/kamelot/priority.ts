/**
 * Multifactor job priority (JOB_PRIORITY=MULTIFACTOR, docs/modules.md §11 "Kamelot"), after OAR 3's
 * oar/kao/multifactor_priority.py, itself after Slurm's: each waiting job gets
 *
 *   priority = Σ weight × factor, over age, queue, work, size, karma, qos and nice
 *
 * and jobs are scheduled highest priority first, equal priorities by job id (FIFO). Weights and
 * parameters come from PRIORITY_CONF_FILE, a JSON object with OAR 3's keys (OAR 3 reads the file
 * as YAML, of which JSON is a subset: one file serves both):
 *
 *   age_weight, age_coef (default 1.65e-6 ≈ 1 / 7 days), queue_weight, queue_coefs
 *   ({"queue": coef}), work_weight, work_mode (0: small jobs first, 1: big ones), size_weight,
 *   size_mode (idem), karma_weight, qos_weight, nice_weight
 *
 * Every weight defaults to 0, as in OAR 3: a key left out leaves its factor out, and a missing
 * or unreadable file (reported) leaves them all out, i.e. FIFO order.
 *
 * Factors, all within [0, 1] but karma's (0, 2):
 *   age   = min(1, age_coef × seconds since submission)
 *   queue = queue_coefs[queue], 0 for a queue not listed (reported)
 *   work  = resources × walltime of the job, over the largest among the jobs sorted;
 *           1 − that when small jobs go first (work_mode 0), that when big ones do
 *   size  = resources asked over the platform's resources; 1 − that (size_mode 0), or that
 *   karma = 1 / (1 + karma) for karma ≥ 0, continued below 0 as 2 − 1 / (1 − karma)
 *   qos   = the job's `qos=<x>` type, clamped to [0, 1]; 0 without one
 *   nice  = 1 / (1 + n) for the job's `nice=<n>` type (n < 0 counts as 0); 1 without one
 *
 * Departures from OAR 3, on purpose (its formulas do not do what its own comments say):
 *  - age: OAR 3 takes max(1, coef × age), so every job younger than 1 / coef (a week) gets the
 *    same factor and the age weight orders nothing before then. Here the factor grows with age
 *    and saturates at 1 (Slurm's PriorityMaxAge).
 *  - work: OAR 3 takes 1 / min(1, work), which is 1 for any job of a resource-second or more.
 *    Here work is measured against the largest waiting job's.
 *  - size: OAR 3 reads a `size` that nothing sets. Here it is the number of resources the
 *    job's smallest moldable asks for, through the hierarchy (`nodes=2` on 4-core hosts is 8).
 *  - karma: 1 / (1 + karma) is infinite at −1 and negative below, where a user far under their
 *    target lands; the curve is continued so that it stays decreasing and bounded (the same
 *    values for karma ≥ 0, where karma always is without targets).
 *  - nice: OAR 3 adds weight × max(1, nice), so a user's own `-t nice=1000` would put their job
 *    first. Here nice means what it means to Unix and Slurm: a higher nice lowers the priority,
 *    and no value raises it above a job's without one.
 *  - qos and nice come from the job's types (OAR 3 never sets them). Users can pass types, so a
 *    site using qos_weight sets or checks `qos=` in its admission rules, as OAR 3 advises.
 *
 * Pure logic: the database reads are in priority_jobs.ts.
 */
import type { LevelRequest } from "./hierarchy.ts";

export type Mode = "small" | "big";

export interface PrioritySettings {
  weights: {
    age: number;
    queue: number;
    work: number;
    size: number;
    karma: number;
    qos: number;
    nice: number;
  };
  /** Per second of age; 1 / coef seconds is the age of full factor. */
  ageCoef: number;
  queueCoefs: ReadonlyMap<string, number>;
  workMode: Mode;
  sizeMode: Mode;
}

/** OAR 3's defaults: no factor at all (FIFO). */
export function defaultPrioritySettings(): PrioritySettings {
  return {
    weights: { age: 0, queue: 0, work: 0, size: 0, karma: 0, qos: 0, nice: 0 },
    ageCoef: 1.65e-6,
    queueCoefs: new Map(),
    workMode: "small",
    sizeMode: "small",
  };
}

const WEIGHT_KEYS = {
  age_weight: "age",
  queue_weight: "queue",
  work_weight: "work",
  size_weight: "size",
  karma_weight: "karma",
  qos_weight: "qos",
  nice_weight: "nice",
} as const;

/** A number, or a string holding one (YAML-minded files quote numbers at times). */
function numeric(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses the priority file's text. Never throws: what cannot be used is left at its default
 * and described in `problems` (for the log), so that a typo never stops scheduling.
 */
export function parsePrioritySettings(
  text: string,
): { settings: PrioritySettings; problems: string[] } {
  const settings = defaultPrioritySettings();
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    problems.push(`not JSON (${(e as Error).message}): every weight is 0`);
    return { settings, problems };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    problems.push(`not a JSON object of weights: every weight is 0`);
    return { settings, problems };
  }
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key in WEIGHT_KEYS) {
      const n = numeric(value);
      if (n === null || n < 0) {
        problems.push(`${key}=${show(value)} is not a number ≥ 0: ${key} is 0`);
      } else settings.weights[WEIGHT_KEYS[key as keyof typeof WEIGHT_KEYS]] = n;
    } else if (key === "age_coef") {
      const n = numeric(value);
      if (n === null || n <= 0) {
        problems.push(`age_coef=${show(value)} is not a number > 0: using ${settings.ageCoef}`);
      } else settings.ageCoef = n;
    } else if (key === "work_mode" || key === "size_mode") {
      // OAR 3 tests the value's truth: 0 (or false) small jobs first, anything else big ones.
      const mode: Mode | null = value === 0 || value === false || value === "0"
        ? "small"
        : typeof value === "number" || value === true || value === "1"
        ? "big"
        : value === "small" || value === "big"
        ? value
        : null;
      if (mode === null) problems.push(`${key}=${show(value)} is not 0 or 1: using 0 (small)`);
      else if (key === "work_mode") settings.workMode = mode;
      else settings.sizeMode = mode;
    } else if (key === "queue_coefs") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        problems.push(`queue_coefs=${show(value)} is not an object {"queue": coef}: ignored`);
        continue;
      }
      const coefs = new Map<string, number>();
      for (const [queue, coef] of Object.entries(value as Record<string, unknown>)) {
        const n = numeric(coef);
        if (n === null) problems.push(`queue_coefs.${queue}=${show(coef)} is not a number`);
        else coefs.set(queue, n);
      }
      settings.queueCoefs = coefs;
    } else {
      problems.push(`unknown key ${show(key)} ignored`);
    }
  }
  return { settings, problems };
}

/** What the platform looks like to the size factor. */
export interface PlatformSize {
  /** Resources of the platform: the size factor's 100 %. */
  resources: number;
  /** Blocks (distinct values) per hierarchy label, e.g. hosts for network_address. */
  units: ReadonlyMap<string, number>;
}

/**
 * Resources one group asks for: the product of its counts times the resources of one block of
 * its last level (`network_address=2/core=3` is 6, `network_address=2` on 4-core hosts is 8).
 * ALL and BEST count every block of the level within one block of the level above (on average).
 */
export function groupSize(levels: readonly LevelRequest[], p: PlatformSize): number {
  if (levels.length === 0 || p.resources <= 0) return 0;
  let n = 1;
  let parentUnits = 1;
  for (const l of levels) {
    const units = Math.max(1, p.units.get(l.label) ?? p.resources);
    n *= l.count > 0 ? l.count : Math.max(1, units / parentUnits);
    parentUnits = units;
  }
  const lastUnits = Math.max(1, p.units.get(levels.at(-1)!.label) ?? p.resources);
  return n * (p.resources / lastUnits);
}

export interface MoldableShape {
  /** Seconds, without the security time. */
  walltime: number;
  /** Each group's levels, top-down. */
  groups: LevelRequest[][];
}

/**
 * The job's size (resources) and work (resources × seconds): those of its smallest moldable
 * (each taken on its own), or null when it has no usable request.
 */
export function jobSize(
  moldables: readonly MoldableShape[],
  p: PlatformSize,
): { size: number; work: number } | null {
  let size = Infinity, work = Infinity;
  for (const m of moldables) {
    if (m.groups.length === 0) continue;
    let s = 0;
    for (const g of m.groups) s += groupSize(g, p);
    size = Math.min(size, s);
    work = Math.min(work, s * Math.max(0, m.walltime));
  }
  return Number.isFinite(size) ? { size, work } : null;
}

/** The number in a `key=<number>` job type (the last one given), or null. */
export function typeNumber(types: readonly string[], key: string): number | null {
  let out: number | null = null;
  for (const t of types) {
    const i = t.indexOf("=");
    if (i < 0 || t.slice(0, i).trim() !== key) continue;
    const v = t.slice(i + 1).trim();
    const n = v === "" ? NaN : Number(v);
    if (Number.isFinite(n)) out = n;
  }
  return out;
}

const clamp01 = (x: number) => x <= 0 ? 0 : x >= 1 ? 1 : x;

export function ageFactor(ageSeconds: number, coef: number): number {
  return clamp01(coef * Math.max(0, ageSeconds));
}

export function queueFactor(queue: string, coefs: ReadonlyMap<string, number>): number {
  return coefs.get(queue) ?? 0;
}

/** `fraction` of the largest (work) or of the platform (size), by mode. */
export function shapeFactor(fraction: number, mode: Mode): number {
  const f = clamp01(fraction);
  return mode === "small" ? 1 - f : f;
}

export function karmaFactor(karma: number): number {
  return karma >= 0 ? 1 / (1 + karma) : 2 - 1 / (1 - karma);
}

export function qosFactor(qos: number | null): number {
  return qos === null ? 0 : clamp01(qos);
}

export function niceFactor(nice: number | null): number {
  return nice === null ? 1 : 1 / (1 + Math.max(0, nice));
}

/** What the factors of one job are computed from. */
export interface PriorityFacts {
  queue: string;
  submissionTime: number;
  /** Resources asked and resources × seconds; null when unknown (no size or work bonus). */
  size: number | null;
  work: number | null;
  /** Fairsharing karma (karma.ts); 0 when not computed. */
  karma: number;
  /** From the `qos=` / `nice=` types; null without one. */
  qos: number | null;
  nice: number | null;
}

export interface PriorityContext {
  now: number;
  /** Resources of the platform (size factor). */
  platformResources: number;
  /** Largest work among the jobs compared (work factor). */
  maxWork: number;
}

/** One job's priority. */
export function priorityOf(f: PriorityFacts, s: PrioritySettings, ctx: PriorityContext): number {
  const w = s.weights;
  let p = 0;
  if (w.age > 0) p += w.age * ageFactor(ctx.now - f.submissionTime, s.ageCoef);
  if (w.queue > 0) p += w.queue * queueFactor(f.queue, s.queueCoefs);
  if (w.work > 0 && f.work !== null && ctx.maxWork > 0) {
    p += w.work * shapeFactor(f.work / ctx.maxWork, s.workMode);
  }
  if (w.size > 0 && f.size !== null && ctx.platformResources > 0) {
    p += w.size * shapeFactor(f.size / ctx.platformResources, s.sizeMode);
  }
  if (w.karma > 0) p += w.karma * karmaFactor(f.karma);
  if (w.qos > 0) p += w.qos * qosFactor(f.qos);
  if (w.nice > 0) p += w.nice * niceFactor(f.nice);
  return Number.isFinite(p) ? p : 0;
}

/**
 * Jobs sorted highest priority first, equal priorities by job id; with every job's priority.
 * `warn` hears once of each queue missing from queue_coefs while queue_weight is set.
 */
export function sortByPriority<T extends { jobId: number }>(
  jobs: readonly T[],
  factsOf: (job: T) => PriorityFacts,
  settings: PrioritySettings,
  ctx: { now: number; platformResources: number },
  warn: (msg: string) => void = () => {},
): { ordered: T[]; priority: Map<number, number> } {
  const facts = jobs.map(factsOf);
  let maxWork = 0;
  for (const f of facts) if (f.work !== null && f.work > maxWork) maxWork = f.work;
  const full: PriorityContext = { ...ctx, maxWork };
  if (settings.weights.queue > 0) {
    const missing = new Set<string>();
    for (const f of facts) if (!settings.queueCoefs.has(f.queue)) missing.add(f.queue);
    for (const q of missing) {
      warn(`queue ${q} is not in the priority file's queue_coefs: its queue factor is 0`);
    }
  }
  const p = new Float64Array(jobs.length);
  const priority = new Map<number, number>();
  for (let i = 0; i < jobs.length; i++) {
    p[i] = priorityOf(facts[i], settings, full);
    priority.set(jobs[i].jobId, p[i]);
  }
  const order = Array.from(jobs.keys()).sort((a, b) =>
    p[b] - p[a] || jobs[a].jobId - jobs[b].jobId
  );
  return { ordered: order.map((i) => jobs[i]), priority };
}
