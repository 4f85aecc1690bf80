/**
 * Temporal quotas (OAR 3's "periodical" and "oneshot" entries of the quotas file): which set of
 * rules is in force at each instant.
 *
 *     "periodical": [["08:00-19:00 mon-fri * *", "quotas_workday", "workdays"],
 *                    ["* sat-sun * *", "quotas_weekend", "weekend"], ...],
 *     "oneshot": [["2020-07-23 19:30", "2020-08-29 08:30", "quotas_holiday", "summer"]],
 *     "quotas_workday": {"*,*,*,john": [100,-1,-1]}, ...
 *
 * A periodical entry is `<hours> <week days> <month days> <months>`, in the server's local time,
 * weeks starting on Monday: hours `*` (the whole day) or `HH:MM-HH:MM` (`00:00` as the end means
 * midnight; an end before the start runs past midnight), days `*`, `mon`, `mon,wed` or `mon-fri`
 * (`fri-mon` wraps; with hours `*` a range is one span). Month days and months must be `*`, as
 * in OAR 3. An entry `["default", name]` (or `"*,*,*,*"`) names the rules of the hours no entry
 * covers; without it they get the `quotas` rules. A oneshot entry ([begin, end) in local time)
 * overrides the periodicals. Overlapping entries are an error (OAR 3 only warns and then picks
 * one by its internal order).
 */

export interface QuotaCalendar {
  /** The rule set in force at t, and the first instant (> t) where it may change. */
  at(t: number): { set: number; until: number };
}

const WEEK = 7 * 86400;
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** [begin, end) in seconds from Monday 00:00 (wall clock), and its rule set. */
interface Periodical {
  begin: number;
  end: number;
  set: number;
  text: string;
}

interface Oneshot {
  begin: number;
  end: number;
  set: number;
  text: string;
}

/** `H:MM` or `H:MM:SS` → seconds, or null. */
function clock(s: string): number | null {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s);
  if (!m) return null;
  const h = Number(m[1]), min = Number(m[2]), sec = Number(m[3] ?? 0);
  if (h > 24 || min > 59 || sec > 59 || (h === 24 && (min > 0 || sec > 0))) return null;
  return h * 3600 + min * 60 + sec;
}

function day(s: string): number | null {
  const i = DAYS.indexOf(s.toLowerCase());
  return i < 0 ? null : i;
}

/**
 * The week intervals of a periodical spec, or what is wrong with it. Intervals past the end of
 * the week wrap to its start.
 */
export function periodicalIntervals(spec: string): [number, number][] | string {
  const f = spec.trim().split(/\s+/);
  if (f.length !== 4) return `"${spec}": expected "<hours> <week days> * *"`;
  const [hours, wdays, mday, month] = f;
  if (mday !== "*" || month !== "*") {
    return `"${spec}": month days and months are not supported (must be *)`;
  }
  let begin = 0, length = 86400;
  if (hours !== "*") {
    const m = /^([^-]+)-([^-]+)$/.exec(hours);
    const b = m ? clock(m[1]) : null, e = m ? clock(m[2]) : null;
    if (b === null || e === null || b >= 86400) return `"${spec}": bad hours "${hours}"`;
    const end = e === 0 ? 86400 : e;
    if (end === b) return `"${spec}": empty hours "${hours}"`;
    begin = b;
    length = end > b ? end - b : end + 86400 - b;
  }
  const spans: [number, number][] = [];
  if (wdays === "*") {
    if (hours === "*") spans.push([0, WEEK]);
    else for (let d = 0; d < 7; d++) spans.push([d * 86400 + begin, d * 86400 + begin + length]);
  } else if (wdays.includes("-")) {
    const ends = wdays.split("-");
    const a = day(ends[0]), b = day(ends[1] ?? "");
    if (ends.length !== 2 || a === null || b === null) return `"${spec}": bad days "${wdays}"`;
    const n = (b - a + 7) % 7 + 1;
    if (hours === "*") spans.push([a * 86400, a * 86400 + n * 86400]);
    else {
      for (let k = 0; k < n; k++) {
        const d = (a + k) % 7;
        spans.push([d * 86400 + begin, d * 86400 + begin + length]);
      }
    }
  } else {
    for (const w of wdays.split(",")) {
      const d = day(w);
      if (d === null) return `"${spec}": bad day "${w}"`;
      spans.push([d * 86400 + begin, d * 86400 + begin + length]);
    }
  }
  const out: [number, number][] = [];
  for (const [b, e] of spans) {
    if (e <= WEEK) out.push([b, e]);
    else out.push([b, WEEK], [0, e - WEEK]);
  }
  return out;
}

/** `YYYY-MM-DD hh:mm[:ss]` in local time → epoch seconds, or null. */
export function localDate(s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map((x) => Number(x ?? 0));
  const date = new Date(y, mo - 1, d, h, mi, se);
  // Date rolls 2021-02-30 over to March: such a date is a typo.
  if (date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  return Math.floor(date.getTime() / 1000);
}

/** The calendar of a quotas file; built by parseCalendar. */
class WeeklyCalendar implements QuotaCalendar {
  constructor(
    /** Sorted, disjoint. */
    private readonly periodicals: readonly Periodical[],
    /** Sorted, disjoint. */
    private readonly oneshots: readonly Oneshot[],
    /** The rules of the hours no periodical covers. */
    private readonly gaps: number,
  ) {}

  at(t: number): { set: number; until: number } {
    let nextOneshot = Infinity;
    for (const o of this.oneshots) {
      if (t >= o.begin && t < o.end) return { set: o.set, until: o.end };
      if (o.begin > t) {
        nextOneshot = o.begin;
        break;
      }
    }
    const d = new Date(t * 1000);
    const wd = (d.getDay() + 6) % 7;
    const offset = wd * 86400 + d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
    // Wall-clock offsets back to instants, from this week's Monday (DST-proof: Date does it).
    const y = d.getFullYear(), mo = d.getMonth(), monday = d.getDate() - wd;
    const instant = (o: number) =>
      Math.floor(
        new Date(
          y,
          mo,
          monday + Math.floor(o / 86400),
          Math.floor((o % 86400) / 3600),
          Math.floor((o % 3600) / 60),
          o % 60,
        ).getTime() / 1000,
      );
    let set = this.gaps, end = WEEK;
    for (const p of this.periodicals) {
      if (offset >= p.begin && offset < p.end) {
        set = p.set;
        end = p.end;
        break;
      }
      if (p.begin > offset) {
        end = p.begin;
        break;
      }
    }
    // Never stuck: a change is always strictly later (a DST jump cannot send it back).
    const until = Math.min(Math.max(instant(end), t + 1), nextOneshot);
    return { set, until };
  }
}

/**
 * Parses the `periodical` and `oneshot` entries. `setOf(name)` gives the index of a named rule
 * set (parsing it on first use), or what is wrong with it. Returns the calendar, or an error.
 */
export function parseCalendar(
  periodical: unknown,
  oneshot: unknown,
  setOf: (name: string) => number | string,
): QuotaCalendar | string {
  const periodicals: Periodical[] = [];
  let gaps = 0;
  if (periodical !== undefined) {
    if (!Array.isArray(periodical)) return `"periodical" must be a list of entries`;
    for (const e of periodical) {
      if (
        !Array.isArray(e) || e.length < 2 || typeof e[0] !== "string" || typeof e[1] !== "string"
      ) {
        return `periodical entry ${JSON.stringify(e)}: expected ["<hours> <days> * *", rules]`;
      }
      const set = setOf(e[1]);
      if (typeof set === "string") return set;
      if (e[0].trim() === "default" || e[0].trim() === "*,*,*,*") {
        gaps = set;
        continue;
      }
      const spans = periodicalIntervals(e[0]);
      if (typeof spans === "string") return `periodical ${spans}`;
      for (const [begin, end] of spans) periodicals.push({ begin, end, set, text: e[0] });
    }
  }
  periodicals.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < periodicals.length; i++) {
    const a = periodicals[i - 1], b = periodicals[i];
    if (b.begin < a.end) return `periodical entries "${a.text}" and "${b.text}" overlap`;
  }
  const oneshots: Oneshot[] = [];
  if (oneshot !== undefined) {
    if (!Array.isArray(oneshot)) return `"oneshot" must be a list of entries`;
    for (const e of oneshot) {
      if (
        !Array.isArray(e) || e.length < 3 || e.slice(0, 3).some((x) => typeof x !== "string")
      ) {
        return `oneshot entry ${JSON.stringify(e)}: expected [begin, end, rules]`;
      }
      const begin = localDate(e[0]), end = localDate(e[1]);
      if (begin === null || end === null) {
        return `oneshot entry ${JSON.stringify(e)}: dates must be "YYYY-MM-DD hh:mm"`;
      }
      if (end <= begin) return `oneshot entry ${JSON.stringify(e)}: it ends before it begins`;
      const set = setOf(e[2]);
      if (typeof set === "string") return set;
      oneshots.push({ begin, end, set, text: `${e[0]} - ${e[1]}` });
    }
  }
  oneshots.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < oneshots.length; i++) {
    const a = oneshots[i - 1], b = oneshots[i];
    if (b.begin < a.end) return `oneshot entries "${a.text}" and "${b.text}" overlap`;
  }
  return new WeeklyCalendar(periodicals, oneshots, gaps);
}
