/**
 * Scheduling quotas (OAR 3's `QUOTAS=yes`, docs/modules.md §11 Kamelot "Extras"): limits on what
 * groups of jobs may use at a time, written in the JSON file QUOTAS_CONF_FILE:
 *
 *     {"quotas": {"queue,project,job_type,user": [max_resources, max_running_jobs,
 *                                                  max_resource_hours], ...}}
 *
 * A field is a value (the rule applies to the jobs having it: for the job type, a job with that
 * type), `*` (every value, counted together) or `/` (every value, counted per distinct value:
 * `*,*,*,/` limits each user on their own; not for the job type). -1 means unlimited. A limit is
 * a number, a numeric string, `ALL` (the number of default resources, QUOTAS_ALL_NB_RESOURCES_MODE)
 * or `<factor>*ALL`; a single number means `[n, -1, -1]`. Every rule that applies to a job
 * must hold (the lowest limit wins).
 *
 * What is counted, at every instant, for the jobs of a rule's group running then (placed in the
 * Gantt over [start, start + walltime + security time)):
 *   - resources: their default resources (type 'default'), as OAR;
 *   - running jobs: their number;
 *   - resource-hours: the sum of their whole surfaces (resources × walltime), the "resource
 *     time in use at a time" of OAR's documentation — one job of 200 resources for 1 hour, or
 *     of 1 resource for 200 hours, fits `[-1, -1, 200]`.
 * A job may be placed in a window only if, over the whole window, adding it keeps every
 * applying rule within its limits; otherwise Kamelot tries later, when earlier jobs end.
 *
 * Where OAR 3 went wrong (docs/differences.md #95, #100) and what we do instead:
 *   - `/` rules were checked against the aggregated counters too (a per-user limit capped all
 *     users together): here a `/` rule counts the job's own value only;
 *   - resource-hours of the slots of a window were summed, counting a job once per slot it
 *     spans (#100): here they are a value at each instant, and a window takes its maximum, as
 *     for the two other counters;
 *   - the search for a window that passes the quotas could go on for ever (#95): here every
 *     step moves the candidate start strictly forward, to a boundary of a counter's timeline
 *     (a finite set), and a job whose own need exceeds a limit is refused at once.
 *
 * Temporal quotas (quotas_calendar.ts): with "periodical"/"oneshot" entries, other sets of
 * rules are in force at other times; each instant of a window must keep within the rules in
 * force at that instant (OAR 3 refused any window over which the rules change, so that a job
 * longer than a period never ran). The search stops QUOTAS_WINDOW_TIME_LIMIT after the round's
 * start, as OAR 3's: a job with no window before then is not scheduled this round.
 *
 * Exemptions (OAR 3): a `container` job is neither checked nor counted (its inner jobs are);
 * a `no_quotas` job is not checked, but it is counted (its resources are in use all the same).
 *
 * Counters are step functions over time (breakpoints and values), not arrays per second: the
 * cost of a check follows the number of jobs in the group, not the length of the window.
 */
import { count, intersect, type Itvs } from "./intervals.ts";
import { parseCalendar, type QuotaCalendar } from "./quotas_calendar.ts";
import { type Fit, MAX_TIME } from "./slots.ts";

/** A limit meaning "no limit". */
export const UNLIMITED = -1;

export interface QuotaLimits {
  /** Default resources in use at a time, or UNLIMITED. */
  resources: number;
  /** Jobs running at a time, or UNLIMITED. */
  jobs: number;
  /** Resource-seconds (resources × walltime) of the jobs running at a time, or UNLIMITED. */
  resourceSeconds: number;
}

export interface QuotaRule {
  /** As written in the file (`queue,project,job_type,user`): for messages. */
  key: string;
  queue: string;
  project: string;
  jobType: string;
  user: string;
  limits: QuotaLimits;
}

/** What quotas know of a job. */
export interface QuotaJob {
  queue: string;
  project: string;
  user: string;
  /** Job types as stored (`name` or `name=value`). */
  types: readonly string[];
}

export interface ParsedQuotas {
  /** The `quotas` rules: always in force without a calendar, in its gaps with one. */
  rules: QuotaRule[];
  /** Every rule set: [0] is `rules`, the others those the calendar names. */
  sets: QuotaRule[][];
  /** Temporal quotas: which set is in force when (quotas_calendar.ts); null without. */
  calendar: QuotaCalendar | null;
  /** Things ignored on the way (unknown keys), for the log. */
  warnings: string[];
}

/** The name of each type (`timesharing=user,*` is type `timesharing`). */
function typeNames(types: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of types) {
    const i = t.indexOf("=");
    out.add((i < 0 ? t : t.slice(0, i)).trim());
  }
  return out;
}

/** Whether a job's resources count in the quotas (a container's are its inner jobs'). */
export function countedByQuotas(types: readonly string[]): boolean {
  return !typeNames(types).has("container");
}

/** Whether a job must fit the quotas (not a container, not `no_quotas`). */
export function checkedByQuotas(types: readonly string[]): boolean {
  const names = typeNames(types);
  return !names.has("container") && !names.has("no_quotas");
}

// --- the file ---------------------------------------------------------------------------------

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;
const TIMES_ALL = /^([+-]?(\d+(\.\d*)?|\.\d+))\s*\*\s*ALL$/;

/** A limit as written (number, numeric string, ALL, k*ALL), or null when it is none of them. */
function amount(v: unknown, all: number): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v !== "string") return null;
  const s = v.trim();
  if (NUMBER.test(s)) return Number(s);
  if (s === "ALL") return all;
  const m = TIMES_ALL.exec(s);
  return m ? Number(m[1]) * all : null;
}

/** Parses one rule's limits; a string says what is wrong. */
function parseLimits(key: string, v: unknown, all: number): QuotaLimits | string {
  const list = Array.isArray(v) ? v : [v];
  if (list.length < 1 || list.length > 3) {
    return `rule "${key}": expected [max_resources, max_running_jobs, max_resource_hours]`;
  }
  const names = ["max_resources", "max_running_jobs", "max_resource_hours"];
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    const x = i < list.length ? amount(list[i], all) : UNLIMITED;
    if (x === null) {
      return `rule "${key}": ${names[i]} ${JSON.stringify(list[i])} is not a number, ALL ` +
        `or <factor>*ALL`;
    }
    // Any negative value means "no limit", as in OAR (its test is `limit > -1`).
    out.push(x < 0 ? UNLIMITED : Math.trunc(i === 2 ? x * 3600 : x));
  }
  return { resources: out[0], jobs: out[1], resourceSeconds: out[2] };
}

/** Parses the rules of a `quotas` object; a string says what is wrong. */
export function parseRules(obj: unknown, all: number): QuotaRule[] | string {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    return `"quotas" must be an object of "queue,project,job_type,user": [limits] entries`;
  }
  const rules: QuotaRule[] = [];
  for (const [key, v] of Object.entries(obj)) {
    const f = key.split(",").map((s) => s.trim());
    if (f.length !== 4 || f.some((x) => x === "")) {
      return `rule "${key}": the key must be "queue,project,job_type,user"`;
    }
    // OAR 3 silently never applies such a rule; a rule written to no effect is an error here.
    if (f[2] === "/") return `rule "${key}": "/" cannot be used for the job type`;
    const limits = parseLimits(key, v, all);
    if (typeof limits === "string") return limits;
    rules.push({ key, queue: f[0], project: f[1], jobType: f[2], user: f[3], limits });
  }
  return rules;
}

/**
 * Parses a quotas file. `all` is what `ALL` stands for. Returns the rules, or a string saying
 * what is wrong with the file (the caller decides what a broken file means for the round).
 */
export function parseQuotasFile(text: string, all: number): ParsedQuotas | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return `not valid JSON: ${(e as Error).message}`;
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return `expected a JSON object with a "quotas" entry`;
  }
  const entries = json as Record<string, unknown>;
  if ("job_types" in entries) {
    // OAR 3 counts a type only when listed here; a type rule applies to the jobs of that type
    // whether listed or not, so the list only has to be well-formed.
    const v = entries.job_types;
    if (!Array.isArray(v) || v.some((t) => typeof t !== "string")) {
      return `"job_types" must be a list of type names`;
    }
  }
  let rules: QuotaRule[] = [];
  if ("quotas" in entries) {
    const r = parseRules(entries.quotas, all);
    if (typeof r === "string") return r;
    rules = r;
  }
  // Temporal quotas: the rule sets the calendar names are entries of the file too.
  const sets: QuotaRule[][] = [rules];
  const names = new Map<string, number>([["quotas", 0]]);
  const setOf = (name: string): number | string => {
    const known = names.get(name);
    if (known !== undefined) return known;
    if (!(name in entries) || RESERVED.has(name)) return `no rules named "${name}" in the file`;
    const r = parseRules(entries[name], all);
    if (typeof r === "string") return `"${name}": ${r}`;
    names.set(name, sets.length);
    sets.push(r);
    return sets.length - 1;
  };
  let calendar: QuotaCalendar | null = null;
  if ("periodical" in entries || "oneshot" in entries) {
    const c = parseCalendar(entries.periodical, entries.oneshot, setOf);
    if (typeof c === "string") return c;
    calendar = c;
  }
  const warnings: string[] = [];
  for (const k of Object.keys(entries)) {
    if (!RESERVED.has(k) && !names.has(k)) warnings.push(`unknown entry "${k}" ignored`);
  }
  return { rules, sets, calendar, warnings };
}

const RESERVED = new Set(["quotas", "job_types", "periodical", "oneshot"]);

// --- counters ---------------------------------------------------------------------------------

/** What one job adds to a counter while it runs. */
interface Need {
  resources: number;
  resourceSeconds: number;
}

/**
 * A group's counters over time: values on [t[i], t[i + 1]), zero before t[0] and from the last
 * breakpoint on (every contribution ends).
 */
export class Timeline {
  readonly t: number[] = [];
  readonly resources: number[] = [];
  readonly jobs: number[] = [];
  readonly resourceSeconds: number[] = [];

  /** Index of the first breakpoint >= x. */
  #lowerBound(x: number): number {
    const t = this.t;
    let lo = 0, hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Makes x a breakpoint (the segment holding it is split); returns its index. */
  #breakAt(x: number): number {
    const i = this.#lowerBound(x);
    if (i < this.t.length && this.t[i] === x) return i;
    const inside = i > 0;
    this.t.splice(i, 0, x);
    this.resources.splice(i, 0, inside ? this.resources[i - 1] : 0);
    this.jobs.splice(i, 0, inside ? this.jobs[i - 1] : 0);
    this.resourceSeconds.splice(i, 0, inside ? this.resourceSeconds[i - 1] : 0);
    return i;
  }

  /** Adds a job over [start, end) (exclusive end). */
  add(start: number, end: number, need: Need): void {
    if (end <= start) return;
    const i = this.#breakAt(start);
    const k = this.#breakAt(end);
    for (let m = i; m < k; m++) {
      this.resources[m] += need.resources;
      this.jobs[m] += 1;
      this.resourceSeconds[m] += need.resourceSeconds;
    }
  }

  /** The counters' maxima over [a, b) (exclusive end). */
  maxOver(a: number, b: number): { resources: number; jobs: number; resourceSeconds: number } {
    const out = { resources: 0, jobs: 0, resourceSeconds: 0 };
    const t = this.t;
    for (let k = Math.max(0, this.#lowerBound(a + 1) - 1); k < t.length && t[k] < b; k++) {
      if (k + 1 < t.length && t[k + 1] <= a) continue;
      out.resources = Math.max(out.resources, this.resources[k]);
      out.jobs = Math.max(out.jobs, this.jobs[k]);
      out.resourceSeconds = Math.max(out.resourceSeconds, this.resourceSeconds[k]);
    }
    return out;
  }

  /**
   * The earliest x >= from such that adding `need` over [x, x + duration) keeps every counter
   * within `limits`, at the instants `active` says the limits are in force (all of them when
   * it is absent); or some x with x + duration - 1 > horizon when there is none before it.
   * Single forward pass: a segment that would go over moves x past it (or past the part of it
   * where the limits are in force). The job's own need must fit the limits (checked by the
   * caller), so the last segment (all zero) never blocks.
   */
  earliest(
    from: number,
    duration: number,
    need: Need,
    limits: QuotaLimits,
    active?: ActiveParts,
    horizon = MAX_TIME,
  ): number {
    const t = this.t;
    let x = from;
    // The segment holding x (or the first one after it).
    let k = Math.max(0, this.#lowerBound(x + 1) - 1);
    while (k < t.length - 1 && t[k] < x + duration && x + duration - 1 <= horizon) {
      if (t[k + 1] <= x) {
        k++;
        continue;
      }
      const over =
        (limits.resources >= 0 && this.resources[k] + need.resources > limits.resources) ||
        (limits.jobs >= 0 && this.jobs[k] + 1 > limits.jobs) ||
        (limits.resourceSeconds >= 0 &&
          this.resourceSeconds[k] + need.resourceSeconds > limits.resourceSeconds);
      if (!over) {
        k++;
        continue;
      }
      if (active === undefined) {
        x = t[k + 1];
        k++;
        continue;
      }
      // Over only where the limits are in force: past the first such part, then this segment
      // again (strictly forward each time).
      const part = active(Math.max(t[k], x), Math.min(t[k + 1], x + duration));
      if (part === null) k++;
      else x = part[1];
    }
    return x;
  }
}

/**
 * The first part of [a, b) where some limits are in force, as [from, to), or null (temporal
 * quotas: the calendar says when).
 */
export type ActiveParts = (a: number, b: number) => [number, number] | null;

/** A window found, or why the job can never fit the quotas. */
export type QuotaVerdict = { start: number } | { never: string };

function hours(seconds: number): string {
  return String(Math.round(seconds / 36) / 100);
}

/** Temporal quotas: rule sets, when each is in force, how far ahead a job may be placed. */
export interface TemporalQuotas {
  /** [0]: the rules in force where the calendar names none (ParsedQuotas.sets). */
  sets: readonly (readonly QuotaRule[])[];
  calendar: QuotaCalendar;
  /**
   * The last second a job placed under temporal quotas may run (QUOTAS_WINDOW_TIME_LIMIT after
   * the round's start): the calendar repeats for ever, this bounds the search.
   */
  horizon: number;
}

interface Applying {
  set: number;
  rule: QuotaRule;
  timeline: Timeline;
}

/** The rules and the counters of a round. */
export class Quotas {
  readonly #timelines = new Map<string, Timeline>();
  readonly #sets: readonly (readonly QuotaRule[])[];
  readonly #calendar: QuotaCalendar | null;
  readonly #horizon: number;

  constructor(
    readonly rules: readonly QuotaRule[],
    /** Default resources (ordered ids): only those are counted. */
    readonly defaultResources: Itvs,
    temporal: TemporalQuotas | null = null,
  ) {
    this.#sets = temporal?.sets ?? [rules];
    this.#calendar = temporal?.calendar ?? null;
    this.#horizon = temporal?.horizon ?? MAX_TIME;
  }

  /** The default resources among `res`. */
  nbResources(res: Itvs): number {
    return count(intersect(res, this.defaultResources));
  }

  /** Whether a rule applies to a job. */
  static applies(rule: QuotaRule, job: QuotaJob, names: ReadonlySet<string>): boolean {
    const field = (r: string, v: string) => r === "*" || r === "/" || r === v;
    return field(rule.queue, job.queue) && field(rule.project, job.project) &&
      field(rule.user, job.user) && (rule.jobType === "*" || names.has(rule.jobType));
  }

  /** The counter a job goes to under a rule: the rule's, per value of its `/` fields. */
  static groupKey(index: number, rule: QuotaRule, job: QuotaJob): string {
    const per = (r: string, v: string) => r === "/" ? v : "";
    return `${index}\u0000${per(rule.queue, job.queue)}\u0000${per(rule.project, job.project)}` +
      `\u0000${per(rule.user, job.user)}`;
  }

  /** The rules applying to a job, in every set, with their counters (created on demand). */
  #applying(job: QuotaJob): Applying[] {
    const names = typeNames(job.types);
    const out: Applying[] = [];
    for (let set = 0; set < this.#sets.length; set++) {
      const rules = this.#sets[set];
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i];
        const l = rule.limits;
        if (l.resources < 0 && l.jobs < 0 && l.resourceSeconds < 0) continue;
        if (!Quotas.applies(rule, job, names)) continue;
        const key = `${set}\u0000${Quotas.groupKey(i, rule, job)}`;
        let timeline = this.#timelines.get(key);
        if (timeline === undefined) {
          timeline = new Timeline();
          this.#timelines.set(key, timeline);
        }
        out.push({ set, rule, timeline });
      }
    }
    return out;
  }

  /** Where a rule set is in force (null: everywhere, there is no calendar). */
  #active(set: number): ActiveParts | undefined {
    const calendar = this.#calendar;
    if (calendar === null) return undefined;
    return (a, b) => {
      for (let t = a; t < b;) {
        const { set: s, until } = calendar.at(t);
        if (s === set) return [t, Math.min(until, b)];
        t = until;
      }
      return null;
    };
  }

  /**
   * Counts a job on `nb` default resources over [start, end] (inclusive, security time
   * included); `walltime` (without security time) makes its resource-hours.
   */
  add(job: QuotaJob, start: number, end: number, nb: number, walltime: number): void {
    const need = { resources: nb, resourceSeconds: nb * Math.max(0, walltime) };
    for (const { timeline } of this.#applying(job)) timeline.add(start, end + 1, need);
  }

  /** Why a job's own need breaks a rule whatever the others do, or null. */
  static #alone(rule: QuotaRule, nb: number, resourceSeconds: number): string | null {
    const l = rule.limits;
    if (l.resources >= 0 && nb > l.resources) {
      return `quota ${rule.key}: at most ${l.resources} resources at a time, the job needs ${nb}`;
    }
    if (l.jobs === 0) return `quota ${rule.key}: no running job allowed`;
    if (l.resourceSeconds >= 0 && resourceSeconds > l.resourceSeconds) {
      return `quota ${rule.key}: at most ${hours(l.resourceSeconds)} resource-hours at a ` +
        `time, the job needs ${hours(resourceSeconds)}`;
    }
    return null;
  }

  /**
   * The earliest start >= `from` where a job on `nb` default resources, occupying `duration`
   * seconds (security time included) for a walltime of `walltime`, keeps every applying rule
   * within its limits over its whole window (under temporal quotas, each instant within the
   * rules in force then); or why it never can.
   */
  earliest(
    job: QuotaJob,
    nb: number,
    walltime: number,
    from: number,
    duration: number,
  ): QuotaVerdict {
    const need = { resources: nb, resourceSeconds: nb * Math.max(0, walltime) };
    const applying = this.#applying(job);
    const temporal = this.#calendar !== null;
    // A rule the job breaks on its own: never (without a calendar), or only where that rule's
    // set is not in force.
    const alone = applying.map((a) => Quotas.#alone(a.rule, nb, need.resourceSeconds));
    if (!temporal) {
      const why = alone.find((w) => w !== null);
      if (why) return { never: why };
    }
    // The horizon bounds the walk through the calendar: a job no rule applies to has none.
    const horizon = applying.length > 0 ? this.#horizon : MAX_TIME;
    const beyond = (x: number) => x + duration - 1 > horizon;
    // Each rule's earliest start, until they agree. x only moves forward, each time to a
    // breakpoint of some counter or of the calendar, and never past the horizon (the counters'
    // breakpoints are finitely many, the calendar's too before the horizon): this ends.
    let x = from;
    for (let moved = true; moved && !beyond(x);) {
      moved = false;
      for (let i = 0; i < applying.length && !beyond(x); i++) {
        const { set, rule, timeline } = applying[i];
        const active = this.#active(set);
        let y = x;
        if (alone[i] !== null) {
          // Temporal only: away from every instant where this rule is in force.
          for (let p = active!(y, y + duration); p !== null && !beyond(y);) {
            y = p[1];
            p = active!(y, y + duration);
          }
        } else y = timeline.earliest(x, duration, need, rule.limits, active, horizon);
        if (y > x) {
          x = y;
          moved = true;
        }
      }
    }
    if (beyond(x)) {
      const why = alone.find((w) => w !== null);
      return {
        never: temporal
          ? `quotas leave no window for the job within QUOTAS_WINDOW_TIME_LIMIT` +
            (why ? ` (${why})` : "")
          : "quotas leave no window for the job before the end of time",
      };
    }
    return { start: x };
  }

  /**
   * The first window at or after `first` (a window found for the job's resources) that fits
   * the quotas too: windows the quotas refuse are skipped, the resource search resumes where
   * the quotas would allow the job. `find(t)` is the resource search from t. Every step moves
   * the start strictly forward (to a quota counter's breakpoint, then to the next window with
   * resources), so this ends. Returns the window, or null and why.
   */
  fitFrom(
    job: QuotaJob,
    first: Fit<Itvs>,
    find: (t: number) => Fit<Itvs> | null,
    duration: number,
    walltime: number,
  ): { fit: Fit<Itvs> | null; why?: string } {
    let fit: Fit<Itvs> | null = first;
    while (fit !== null) {
      const v = this.earliest(job, this.nbResources(fit.value), walltime, fit.start, duration);
      if ("never" in v) return { fit: null, why: v.never };
      if (v.start === fit.start) return { fit };
      fit = find(v.start);
    }
    return { fit: null, why: "no window where both the resources and the quotas allow the job" };
  }

  /**
   * The first rule a job would break over [start, start + duration) (where that rule is in
   * force), with the counters it would reach; null when it breaks none.
   */
  violation(
    job: QuotaJob,
    nb: number,
    walltime: number,
    start: number,
    duration: number,
  ): string | null {
    const need = { resources: nb, resourceSeconds: nb * Math.max(0, walltime) };
    for (const { set, rule, timeline } of this.#applying(job)) {
      const l = rule.limits;
      const active = this.#active(set);
      const parts: [number, number][] = [];
      if (active === undefined) parts.push([start, start + duration]);
      else {
        for (
          let p = active(start, start + duration);
          p !== null;
          p = active(p[1], start + duration)
        ) {
          parts.push(p);
        }
      }
      for (const [a, b] of parts) {
        const m = timeline.maxOver(a, b);
        if (l.resources >= 0 && m.resources + nb > l.resources) {
          return `quota ${rule.key}: ${m.resources + nb} resources in use at a time, the ` +
            `limit is ${l.resources}`;
        }
        if (l.jobs >= 0 && m.jobs + 1 > l.jobs) {
          return `quota ${rule.key}: ${m.jobs + 1} running jobs at a time, the limit is ${l.jobs}`;
        }
        if (
          l.resourceSeconds >= 0 && m.resourceSeconds + need.resourceSeconds > l.resourceSeconds
        ) {
          return `quota ${rule.key}: ${hours(m.resourceSeconds + need.resourceSeconds)} ` +
            `resource-hours at a time, the limit is ${hours(l.resourceSeconds)}`;
        }
      }
    }
    return null;
  }

  /**
   * An advance reservation at its fixed window: null when it fits the quotas (it is then
   * counted), or why it does not.
   */
  admit(
    job: QuotaJob,
    res: Itvs,
    start: number,
    duration: number,
    walltime: number,
  ): string | null {
    const nb = this.nbResources(res);
    if (checkedByQuotas(job.types)) {
      const why = this.violation(job, nb, walltime, start, duration);
      if (why !== null) return why;
      if (start + duration - 1 > MAX_TIME) return "the reservation ends after the end of time";
    }
    if (countedByQuotas(job.types)) this.add(job, start, start + duration - 1, nb, walltime);
    return null;
  }
}
