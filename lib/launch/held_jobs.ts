/**
 * Is a Running job's oarexec still there? (issue 11: an oarexec killed with SIGKILL, or gone
 * with its node's reboot, never reports, and its job would stay Running until its walltime.)
 * The test is the one `signal_oarexec` relies on (docs/modules.md §12.1): the job's pid file
 * `OAREXEC_DIRECTORY/<OAREXEC_PID_FILE_NAME><id>` exists and names a live process. oarexec keeps
 * that file until its report has been acknowledged (lib/exec/run.ts), and the local agent,
 * which runs several jobs, writes its own pid in each job's file.
 *
 * One shell script answers for all the jobs of a host, a line `<id> alive` or `<id> gone` each,
 * then `END`: the ssh launcher runs it through OPENSSH_CMD (one command per host), the local
 * launcher through `sh`. No `END`, a failed command, a timeout: no answer (null), never "gone".
 *
 * A pid file naming no live process is stale (its oarexec was killed: nobody else will ever
 * remove it, issue 22), and the script removes it: the answer stays "gone", as for no file. No
 * other process writes a job's pid file once its oarexec is dead (job ids are not reused).
 */
import { join } from "node:path";
import type { Config } from "../runtime/config.ts";
import { shellQuote } from "./signal_script.ts";

/** job id → its oarexec is alive (true) or gone (false). */
export type HeldJobs = Map<number, boolean>;

const END = "END";

/** The script; job ids are integers, the paths come from the configuration (quoted). */
export function heldJobsScript(config: Config, jobIds: readonly number[]): string {
  const ids = jobIds.filter((id) => Number.isSafeInteger(id) && id > 0).join(" ");
  const prefix = join(config.str("OAREXEC_DIRECTORY"), config.str("OAREXEC_PID_FILE_NAME"));
  // A pid is digits only; /proc answers for a process of any user (kill -0 would say EPERM).
  return [
    `for j in ${ids}; do`,
    `p=$(cat ${shellQuote(prefix)}"$j" 2>/dev/null);`,
    `case "$p" in ''|*[!0-9]*) s=gone;;`,
    `*) if [ -d "/proc/$p" ] || kill -0 "$p" 2>/dev/null; then s=alive;`,
    `else s=gone; rm -f ${shellQuote(prefix)}"$j" 2>/dev/null; fi;; esac;`,
    `echo "$j $s"; done; echo ${END}`,
  ].join(" ");
}

/** The answers in a script's output; null without the final END (a cut-off answer). */
export function parseHeldJobs(output: string, jobIds: readonly number[]): HeldJobs | null {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (lines.at(-1) !== END) return null;
  const asked = new Set(jobIds);
  const out: HeldJobs = new Map();
  for (const l of lines.slice(0, -1)) {
    const m = /^(\d+) (alive|gone)$/.exec(l);
    if (m && asked.has(Number(m[1]))) out.set(Number(m[1]), m[2] === "alive");
  }
  return out;
}

/** Runs `argv`, its stdout when it exits 0 within `timeoutMs`, else null. */
export async function outputOf(argv: string[], timeoutMs: number): Promise<string | null> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch {
    return null;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const out = await Promise.race([
    child.output(),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (out === null) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status.catch(() => {});
    return null;
  }
  return out.success ? new TextDecoder().decode(out.stdout) : null;
}

/** The local launcher's check: the script on this host. */
export async function localHeldJobs(
  config: Config,
  jobIds: readonly number[],
): Promise<HeldJobs | null> {
  if (jobIds.length === 0) return new Map();
  const out = await outputOf(
    ["sh", "-c", heldJobsScript(config, jobIds)],
    config.int("TIMEOUT_SSH") * 1000,
  );
  return out === null ? null : parseHeldJobs(out, jobIds);
}
