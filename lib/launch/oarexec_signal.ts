/**
 * Signalling a job's oarexec from the server modules (docs/modules.md §12.1 `signal_oarexec`):
 * checkpoint (USR2) from sarko and the meta-scheduler, suspend and resume (STOP/CONT) from
 * NodeChangeState, the kill (TERM) from leon. They hold an
 * `OarexecSignaller`, so tests can provide their own; the real one goes through the configured
 * launcher (lib/launch/: ssh with OPENSSH_CMD, or local), which owns the remote command, its
 * quoting and TIMEOUT_SSH.
 */
import type { Config } from "../runtime/config.ts";
import type { Launcher } from "./launcher.ts";

/** What the server modules ask of a job's processes. */
export const OAREXEC_SIGNALS = ["USR2", "TERM", "STOP", "CONT"] as const;
export type OarexecSignal = typeof OAREXEC_SIGNALS[number];

export interface SignallerOptions {
  /**
   * Wait for delivery (the default). Leon does not (docs/modules.md §6.2): its kill pass goes on to
   * the next job, and a job whose oarexec did not die is exterminated later.
   */
  wait?: boolean;
}

export interface OarexecSignaller {
  /**
   * Sends `sig` to the job's processes on `host`; null on success (or when not waiting), else
   * an error text.
   */
  signal(
    host: string,
    jobId: number,
    sig: OarexecSignal,
    opts?: SignallerOptions,
  ): Promise<string | null>;
}

/**
 * The signal oarexec itself receives: oarexec stops its user's whole process tree on TSTP and
 * continues it on CONT (lib/exec/run.ts); a STOP would freeze oarexec instead.
 */
const TO_OAREXEC: Readonly<Record<OarexecSignal, string>> = {
  USR2: "USR2",
  TERM: "TERM",
  STOP: "TSTP",
  CONT: "CONT",
};

/** The signaller over a launcher; waits for delivery (within TIMEOUT_SSH) unless told not to. */
export function launcherSignaller(launcher: Launcher): OarexecSignaller {
  return {
    signal: (host, jobId, sig, opts) =>
      launcher.signalOarexec(host, jobId, TO_OAREXEC[sig], { wait: opts?.wait ?? true }),
  };
}

/** `get_oar_pid_file_name`: where oarexec writes its pid on the head node. */
export function oarexecPidFile(config: Config, jobId: number): string {
  const dir = config.str("OAREXEC_DIRECTORY").replace(/\/+$/, "");
  return `${dir}/${config.str("OAREXEC_PID_FILE_NAME")}${jobId}`;
}
