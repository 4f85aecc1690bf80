/**
 * Syntax checks of oarsub's user-given fields, with OAR's error codes (oar/lib/submission.py):
 * job types, dependencies (-a), notification (--notify), output file names (-O/-E), and the
 * advance-reservation date (-r).
 */

/** A refused submission: `code` is OAR's (negative codes end as status code & 0xff). */
export class SubmissionError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "SubmissionError";
  }
}

const TYPE_RE = /^(token:[A-Za-z0-9_-]+=\d+|[A-Za-z_][A-Za-z0-9_-]*(=[A-Za-z0-9_.,*:@\/+-]*)?)$/;

/**
 * The job types oar-deno's modules act upon (OAR 3's). Anything else is a typo until the admin
 * says otherwise (OARSUB_EXTRA_JOB_TYPES, for types of the site's own admission rules): a
 * `-t besteffrot` job silently ran as a normal job.
 */
export const KNOWN_JOB_TYPES: ReadonlySet<string> = new Set([
  "besteffort",
  "idempotent",
  "noop",
  "cosystem",
  "deploy",
  "timesharing",
  "container",
  "inner",
  "placeholder",
  "allow",
  "no_quotas",
  "desktop_computing",
]);

/** Job types (-t): one word, `key=value`, or `token:NAME=N`; stripped as OAR does. */
export function checkTypes(types: string[], extra: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const raw of types) {
    const t = raw.trim();
    if (t === "") continue;
    if (t.length > 255 || !TYPE_RE.test(t)) {
      throw new SubmissionError(`invalid job type "${raw}"`, 2);
    }
    const [key, value] = t.split("=", 2);
    if (!key.startsWith("token:") && !KNOWN_JOB_TYPES.has(key) && !extra.includes(key)) {
      throw new SubmissionError(
        `unknown job type "${key}" (known: ${[...KNOWN_JOB_TYPES].join(", ")}, token:NAME=N` +
          `${extra.length ? `, ${extra.join(", ")}` : ""})`,
        2,
      );
    }
    if (
      key === "timesharing" && value !== undefined &&
      !/^(\*|user|name)(,(\*|user|name))?$/.test(value)
    ) {
      throw new SubmissionError(
        `invalid timesharing type "${t}": expected timesharing=user,name (or * for either)`,
        2,
      );
    }
    if (key === "inner" && !/^\d+$/.test(value ?? "")) {
      throw new SubmissionError(`invalid inner type "${t}": expected inner=<container job id>`, 2);
    }
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** Control characters, and `/` (names end up in file names: %jobname%). */
// deno-lint-ignore no-control-regex -- control characters are what it must find
const UNSAFE_TEXT = /[\x00-\x1f\x7f/]/;

/** `-n NAME`: one line of at most 100 characters, no control character and no `/`. */
export function checkJobName(name: string): void {
  if (name.length > 100 || UNSAFE_TEXT.test(name)) {
    throw new SubmissionError(
      "invalid job name (at most 100 characters; no control character and no /)",
      2,
    );
  }
}

/** `--project NAME`: the same rule, at most 255 characters. */
export function checkProject(project: string): void {
  if (project.length > 255 || UNSAFE_TEXT.test(project)) {
    throw new SubmissionError(
      "invalid project (at most 255 characters; no control character and no /)",
      2,
    );
  }
}

export interface Dependency {
  jobId: number;
  minStartShift: string;
  maxStartShift: string;
}

/** `-a <job id>[,min[,max]]` (OAR 2's syntax for the optional start shifts). */
export function parseDependency(raw: string): Dependency {
  const m = /^\s*(\d+)(?:,([\[\]][-+]?\d+)?(?:,([\[\]][-+]?\d+)?)?)?\s*$/.exec(raw);
  if (!m || Number(m[1]) <= 0 || Number(m[1]) > 2147483647) {
    throw new SubmissionError(`bad dependency "${raw}": expected <job id>[,min[,max]]`, 2);
  }
  return { jobId: Number(m[1]), minStartShift: m[2] ?? "", maxStartShift: m[3] ?? "" };
}

/** `--notify [TAGS]mail:addr` or `exec:command` (with OAR's safe characters for exec). */
export function checkNotify(notify: string): void {
  if (!/^\s*(\[\s*(.+)\s*\]\s*)?(mail|exec)\s*:.+$/.test(notify)) {
    throw new SubmissionError("bad syntax for the notify option.", -6);
  }
  if (/^.*exec\s*:.+$/.test(notify) && !/.*exec\s*:([a-zA-Z0-9_.\/ -]+)$/.test(notify)) {
    throw new SubmissionError(
      "insecure characters found in the notification method (the allowed regexp is: " +
        "[a-zA-Z0-9_.\\/ -]+).",
      16,
    );
  }
  if (notify.length > 255) throw new SubmissionError("notification method too long", -6);
}

const OUTPUT_RE = /^[a-zA-Z0-9_.\/\-\%\\ ]+$/;

export function checkOutputFile(which: "stdout" | "stderr", path: string): void {
  if (!OUTPUT_RE.test(path)) {
    throw new SubmissionError(
      `invalid ${which} file name (bad character)`,
      which === "stdout" ? 12 : -13,
    );
  }
}

/**
 * `-r "YYYY-MM-DD hh:mm:ss"` in the local time zone, as epoch seconds. Refuses another
 * format (code 7) and impossible dates.
 */
export function parseReservationDate(text: string): number {
  const m = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{1,2}):(\d{1,2})\s*$/.exec(text);
  if (!m) {
    throw new SubmissionError(
      "syntax error for the advance reservation start date specification. Expected format " +
        'is:"YYYY-MM-DD hh:mm:ss"',
      7,
    );
  }
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const date = new Date(y, mo - 1, d, h, mi, s);
  if (
    date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d ||
    date.getHours() !== h || date.getMinutes() !== mi || date.getSeconds() !== s
  ) {
    throw new SubmissionError(`invalid advance reservation date "${text.trim()}"`, 7);
  }
  return Math.floor(date.getTime() / 1000);
}
