/**
 * The files oarexec keeps for a job in its temporary directory (spec §4.5): the node file
 * `<tmp>/<id>` (OAR_NODEFILE), the resource file `<tmp>/<id>_resources`, its pid file (what
 * `signal_oarexec` reads) and the user-signal file `oardel -s` writes.
 *
 * Small files on the node's local disk, written with the synchronous calls: each asynchronous
 * one is a hand-off to a thread and back, and the oarexec agent, which runs every job of its
 * host, spent more of its time in those hand-offs than in the writes (about 20 a job).
 */
import { join } from "node:path";
import type { OarexecDescriptor } from "../protocol.ts";

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
export function writeJobFiles(tmp: string, d: OarexecDescriptor): boolean {
  try {
    const nodes = nodeFileLines(d);
    Deno.writeTextFileSync(
      nodeFilePath(tmp, d.job_id),
      nodes.map((l) => l + "\n").join(""),
      { mode: 0o644 },
    );
    const res = resourceFileLines(d);
    Deno.writeTextFileSync(
      resourceFilePath(tmp, d.job_id),
      res.map((l) => l + "\n").join(""),
      { mode: 0o644 },
    );
    // Make them readable by the job's user whatever the umask.
    Deno.chmodSync(nodeFilePath(tmp, d.job_id), 0o644);
    Deno.chmodSync(resourceFilePath(tmp, d.job_id), 0o644);
    return true;
  } catch {
    return false;
  }
}

export function writePidFile(tmp: string, jobId: number, pid: number): boolean {
  try {
    Deno.writeTextFileSync(pidFilePath(tmp, jobId), String(pid));
    return true;
  } catch {
    return false;
  }
}

/** Removes what oarexec created for the job (the reference's clean_all). */
export function removeJobFiles(tmp: string, jobId: number): void {
  for (
    const f of [
      nodeFilePath(tmp, jobId),
      resourceFilePath(tmp, jobId),
      pidFilePath(tmp, jobId),
      userSignalFilePath(tmp, jobId),
    ]
  ) {
    try {
      Deno.removeSync(f);
    } catch { /* not there */ }
  }
}
