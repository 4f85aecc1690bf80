/**
 * The files oarexec keeps for a job in its temporary directory (docs/modules.md §4.5): the node
 * file `<tmp>/<id>` (OAR_NODEFILE), the resource file `<tmp>/<id>_resources`, its pid file (what
 * `signal_oarexec` reads) and the user-signal file `oardel -s` writes.
 *
 * Small files on the node's local disk, written with the synchronous calls: each asynchronous
 * one is a hand-off to a thread and back, and the oarexec agent, which runs every job of its
 * host, spent more of its time in those hand-offs than in the writes (about 20 a job).
 */
import { join } from "node:path";
import type { OarexecDescriptor } from "../protocol/mod.ts";

/**
 * How the job's own small files (node, resource and pid files) are written and removed: in
 * place by default; the oarexec agent recycles them (modules/oarexec/recycled_files.ts).
 * Both throw when the file cannot be written or removed.
 */
export interface SmallFiles {
  /** The file at `path` holds `text`, readable by everyone. */
  write(path: string, text: string): void;
  /** The file at `path` is gone (no error when it was not there). */
  remove(path: string): void;
}

export const plainFiles: SmallFiles = {
  write(path, text) {
    Deno.writeTextFileSync(path, text, { mode: 0o644 });
    // Readable by the job's user whatever the umask.
    Deno.chmodSync(path, 0o644);
  },
  remove(path) {
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
};

export const PID_FILE_PREFIX = "pid_of_oarexec_for_jobId_";

export function nodeFilePath(tmp: string, jobId: number): string {
  return join(tmp, String(jobId));
}

export function resourceFilePath(tmp: string, jobId: number): string {
  return join(tmp, `${jobId}_resources`);
}

export function pidFilePath(tmp: string, jobId: number, prefix = PID_FILE_PREFIX): string {
  return join(tmp, `${prefix}${jobId}`);
}

export function userSignalFilePath(tmp: string, jobId: number): string {
  return join(tmp, `USER_SIGNAL_${jobId}`);
}

/** Creates the directory when missing; false when it cannot exist as a directory. */
export function ensureTmpDirectory(tmp: string): boolean {
  if (tmp === "") return false;
  try {
    Deno.mkdirSync(tmp, { recursive: true, mode: 0o755 });
    return Deno.statSync(tmp).isDirectory;
  } catch {
    return false;
  }
}

function cell(v: unknown): string {
  return v === null || v === undefined ? "" : String(v);
}

/**
 * One line per distinct `node_file_db_fields_distinct_values` value among the `default`
 * resources, holding that resource's `node_file_db_fields` value; lines sorted.
 */
export function nodeFileLines(d: OarexecDescriptor): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const r of d.resources) {
    const value = cell(r[d.node_file_db_fields]);
    const key = cell(r[d.node_file_db_fields_distinct_values]);
    if (value === "" || cell(r.type) !== "default" || key === "" || seen.has(key)) continue;
    seen.add(key);
    lines.push(value);
  }
  return lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Columns the scheduler keeps for itself: not job properties, left out of the resource file. */
const SYSTEM_COLUMNS: ReadonlySet<string> = new Set([
  "state",
  "next_state",
  "finaud_decision",
  "next_finaud_decision",
  "state_num",
  "suspended_jobs",
  "scheduler_priority",
  "expiry_date",
  "desktop_computing",
  "last_job_date",
  "available_upto",
  "last_available_upto",
  "drain",
]);

/** ` name = 'value' , other = 'v'` per resource, the reference's layout. */
export function resourceFileLines(d: OarexecDescriptor): string[] {
  return d.resources.map((r) =>
    Object.keys(r).filter((k) => !SYSTEM_COLUMNS.has(k)).sort()
      .map((k) => ` ${k} = '${cell(r[k])}' `).join(",")
  );
}

/** Writes both files; false when either cannot be written (oarexec exit 5). */
export function writeJobFiles(
  tmp: string,
  d: OarexecDescriptor,
  files: SmallFiles = plainFiles,
): boolean {
  try {
    files.write(nodeFilePath(tmp, d.job_id), nodeFileLines(d).map((l) => l + "\n").join(""));
    files.write(
      resourceFilePath(tmp, d.job_id),
      resourceFileLines(d).map((l) => l + "\n").join(""),
    );
    return true;
  } catch {
    return false;
  }
}

export function writePidFile(
  tmp: string,
  jobId: number,
  pid: number,
  files: SmallFiles = plainFiles,
): boolean {
  try {
    files.write(pidFilePath(tmp, jobId), String(pid));
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes what oarexec created for the job (the reference's clean_all). `keepPid` leaves the
 * pid file, which says oarexec is still there until its report is delivered (removePidFile
 * then).
 */
export function removeJobFiles(
  tmp: string,
  jobId: number,
  opts: { files?: SmallFiles; keepPid?: boolean } = {},
): void {
  const files = opts.files ?? plainFiles;
  const ours = [nodeFilePath(tmp, jobId), resourceFilePath(tmp, jobId)];
  if (!opts.keepPid) ours.push(pidFilePath(tmp, jobId));
  for (const f of ours) {
    try {
      files.remove(f);
    } catch { /* best effort */ }
  }
  // Written by whoever signals the job, never recycled.
  try {
    plainFiles.remove(userSignalFilePath(tmp, jobId));
  } catch { /* best effort */ }
}

/** Removes the job's pid file alone (once the end report is delivered). */
export function removePidFile(tmp: string, jobId: number, files: SmallFiles = plainFiles): void {
  try {
    files.remove(pidFilePath(tmp, jobId));
  } catch { /* best effort */ }
}
