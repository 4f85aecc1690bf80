/**
 * The node prologue and epilogue (docs/modules.md §4.5): `<script> <job_id> <user> <node file>`,
 * run by oarexec itself (not as the user) with a deadline. The script leads its own session so that
 * a timeout kills whatever it started as well.
 */
import type { OarexecLog } from "./log.ts";
import { killSession } from "./process_tree.ts";

/** true when the script succeeded (or none is configured). */
export async function runNodeScript(
  what: "prologue" | "epilogue",
  script: string,
  args: string[],
  timeoutSec: number,
  log: OarexecLog,
): Promise<boolean> {
  const words = script.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return true;
  log.info(`launching ${what}: ${[...words, ...args].join(" ")}`);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("setsid", {
      args: [...words, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    log.info(`cannot run the ${what} ${words[0]}: ${e}`);
    return false;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutSec * 1000)));
  const status = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (status === null) {
    log.info(`${what} timed out after ${timeoutSec} s; killing it`);
    killSession(child.pid, "SIGKILL");
    await child.status;
    return false;
  }
  if (!status.success) {
    log.info(`${what} failed (exit ${status.code}${status.signal ? `, ${status.signal}` : ""})`);
    return false;
  }
  return true;
}
