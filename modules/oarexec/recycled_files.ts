/**
 * The oarexec agent's job files, recycled: a job's node, resource and pid files are moved aside
 * when it ends and become the next job's, rewritten and renamed into place.
 *
 * Why: on our machines' ext4, creating a file is the expensive part of writing one, at times.
 * After many deletions (a job stream deletes files all the time) the inode allocator scans past
 * the inodes freed in the last seconds (`recently_deleted` in the kernel's profile), and a new
 * file then costs 650-1,300 µs of CPU, against 20-30 µs for a rename; without that history a
 * new file costs ~35 µs (`deno task bench:files`). A spare must not be truncated to nothing
 * before it is rewritten, either: ext4 then writes it back to disk on close (see `overwrite`).
 * Measured with `bench:files`, CPU for a job's three files: 1,084-2,384 µs plain, 269-279 µs
 * recycled.
 *
 * A spare is rewritten before it is renamed into place, so a file only ever shows its job's
 * complete content. The spares live in a directory of their own beside the job files (same file
 * system, so renames work), named after the agent's pid; `sweepSpares` removes those of agents
 * that are gone.
 */
import { join } from "node:path";
import { plainFiles, type SmallFiles } from "../../lib/exec/job_files.ts";

const SPARE_DIR_PREFIX = ".spare_files.";
/** Enough for the jobs that end while others start; more are simply removed. */
const DEFAULT_MAX_SPARES = 256;
/** Paths remembered as written (3 per running job); forgetting them is only slower. */
const MAX_WRITTEN = 100_000;

/** Whether a name in the job directory is an agent's spare directory (not a job's file). */
export function isSpareDirectory(name: string): boolean {
  return name.startsWith(SPARE_DIR_PREFIX);
}

export class RecycledFiles implements SmallFiles {
  readonly #dir: string;
  readonly #spares: string[] = [];
  /** Files written and not removed since (by path). */
  readonly #written = new Set<string>();
  #next = 0;
  #usable = true;
  /** Files are reused only when they are ours; unknown (no permission to ask) means never. */
  readonly #uid = ownUid();

  constructor(tmp: string, readonly maxSpares = DEFAULT_MAX_SPARES, pid = Deno.pid) {
    this.#dir = join(tmp, `${SPARE_DIR_PREFIX}${pid}`);
  }

  /** How many files wait to be reused (tests, logs). */
  get spareCount(): number {
    return this.#spares.length;
  }

  write(path: string, text: string): void {
    // A file this agent wrote and has not removed (the pid file, written again for the report)
    // usually holds that text already: left as it is. Known rather than tried: a failed open
    // is an exception, and building one cost more than the write.
    if (this.#written.has(path) && sameText(path, text)) return;
    // Files of jobs that ended without their removal stay listed: bounded all the same.
    if (this.#written.size >= MAX_WRITTEN) this.#written.clear();
    this.#written.add(path);
    const spare = this.#spares.pop();
    if (spare === undefined) return plainFiles.write(path, text);
    try {
      overwrite(spare, text);
      // Renamed whole into place: a reader sees the old file or the new one, never a mix.
      Deno.renameSync(spare, path);
    } catch {
      plainFiles.remove(spare);
      plainFiles.write(path, text);
    }
  }

  remove(path: string): void {
    this.#written.delete(path);
    if (!this.#usable || this.#uid === null || this.#spares.length >= this.maxSpares) {
      return plainFiles.remove(path);
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    // Only a plain file of ours with one name is reused: never a link, nor another's file.
    if (!info.isFile || info.nlink !== 1 || info.uid !== this.#uid) {
      return plainFiles.remove(path);
    }
    const spare = join(this.#dir, String(this.#next++));
    try {
      Deno.renameSync(path, spare);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && this.#makeDir()) {
        try {
          Deno.renameSync(path, spare);
        } catch {
          return plainFiles.remove(path);
        }
      } else return plainFiles.remove(path);
    }
    this.#spares.push(spare);
  }

  /** Removes the spares and their directory (the agent is leaving). */
  clear(): void {
    this.#spares.length = 0;
    this.#written.clear();
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch { /* never made, or gone */ }
  }

  #makeDir(): boolean {
    try {
      Deno.mkdirSync(this.#dir, { mode: 0o700 });
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return true;
      this.#usable = false;
      return false;
    }
  }
}

const encoder = new TextEncoder();

/**
 * Writes `text` over the file's content from its start, then cuts what is left of the old one.
 * Not truncated first: ext4 treats a file truncated to nothing then rewritten as a file being
 * replaced, and writes it back to disk when it is closed (auto_da_alloc): 170-185 µs of CPU a
 * write against 29-36 µs this way (`bench:files`, "same file"), and ~600 µs against ~25 µs of
 * elapsed time.
 */
function overwrite(path: string, text: string): void {
  const bytes = encoder.encode(text);
  const file = Deno.openSync(path, { write: true });
  try {
    let done = 0;
    while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    file.truncateSync(bytes.length);
  } finally {
    file.close();
  }
}

/** Whether the file holds exactly `text` (false when it cannot be read). */
function sameText(path: string, text: string): boolean {
  try {
    return Deno.readTextFileSync(path) === text;
  } catch {
    return false;
  }
}

function ownUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/** Removes the spare directories of agents no longer running (one killed, say). */
export function sweepSpares(tmp: string, isAlive: (pid: number) => boolean): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmp)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory || !isSpareDirectory(e.name)) continue;
    const pid = Number(e.name.slice(SPARE_DIR_PREFIX.length));
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    try {
      Deno.removeSync(join(tmp, e.name), { recursive: true });
    } catch { /* another sweeper */ }
  }
}
