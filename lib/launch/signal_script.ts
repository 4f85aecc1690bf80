/**
 * The shell text `signal_oarexec` runs where the job's oarexec lives (docs/modules.md §12.1): CONT
 * (a suspended oarexec must be able to act) then the signal, to the pid in oarexec's pid file;
 * with a user signal (`oardel -s`), the file oarexec reads on URG is written first. Every
 * value is quoted: they come from the configuration and our own code, never from users, but
 * a path with a space must still work.
 */
import { join } from "node:path";
import type { Config } from "../runtime/config.ts";
import { shellQuote } from "../runtime/shell_quote.ts";

export { shellQuote };

const SIGNAL_RE = /^(SIG)?[A-Z0-9]{1,10}$/;

/** null when `signal` (or the user signal) is not a plain signal name or number. */
export function signalOarexecScript(
  config: Config,
  jobId: number,
  signal: string,
  userSignal?: string,
): string | null {
  if (!SIGNAL_RE.test(signal)) return null;
  if (userSignal !== undefined && !SIGNAL_RE.test(userSignal)) return null;
  const dir = config.str("OAREXEC_DIRECTORY");
  const pidFile = join(dir, `${config.str("OAREXEC_PID_FILE_NAME")}${jobId}`);
  const sig = signal.replace(/^SIG/, "");
  const steps: string[] = [];
  if (userSignal !== undefined) {
    steps.push(
      `printf '%s\\n' ${shellQuote(userSignal)} > ${shellQuote(join(dir, `USER_SIGNAL_${jobId}`))}`,
    );
  }
  steps.push(
    `test -e ${shellQuote(pidFile)}`,
    `PROC=$(cat ${shellQuote(pidFile)})`,
    `kill -s CONT "$PROC"`,
    `kill -s ${sig} "$PROC"`,
  );
  return steps.join(" && ");
}
