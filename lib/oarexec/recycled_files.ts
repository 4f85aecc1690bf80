/**
 * The oarexec agent's job files, recycled: a job's node, resource and pid files are moved aside
 * when it ends and become the next job's, rewritten and renamed into place.
 *
 * Why: on our machines' ext4, creating a file is the expensive part of writing one, at times.
 * After many deletions (a job stream deletes files all the time) the inode allocator scans past
 * the inodes freed in the last seconds (`recently_deleted` in the kernel's profile), and a new
 * file then costs 650-850 µs of CPU, against 20-30 µs for a rename and 30-60 µs for rewriting an
 * existing file; without that history a new file costs ~35 µs (`deno task bench:files`). The
 * agent made four files a job (the pid file twice): up to ~3 ms of a job's ~12-15 ms.
 *
 * A spare is rewritten before it is renamed into place, so a file only ever shows its job's
 * complete content. The spares live in a directory of their own beside the job files (same file
 * system, so renames work), named after the agent's pid; `sweepSpares` removes those of agents
 * that are gone.
 */
import { join } from "node:path";
import { plainFiles, type SmallFiles } from "./job_files.ts";

const SPARE_DIR_PREFIX = ".spare_files.";
/** Enough for the jobs that end while others start; more are simply removed. */
const DEFAULT_MAX_SPARES = 256;

/** Whether a name in the job directory is an agent's spare directory (not a job's file). */
export function isSpareDirectory(name: string): boolean {
  return name.startsWith(SPARE_DIR_PREFIX);
}

export class RecycledFiles implements SmallFiles {
  readonly #dir: string;
  readonly #spares: string[] = [];
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
    // A file already there (the pid file, written again for the report) is rewritten: renaming
    // a spare over it would throw its inode away.
    try {
      return Deno.writeTextFileSync(path, text, { create: false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const spare = this.#spares.pop();
    if (spare === undefined) return plainFiles.write(path, text);
    try {
      Deno.writeTextFileSync(spare, text);
      Deno.renameSync(spare, path);
    } catch {
      plainFiles.remove(spare);
      plainFiles.write(path, text);
    }
  }

  remove(path: string): void {
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
