/**
 * What a launcher (./launcher.ts) is: how bipbip starts oarexec on a job's head node and how
 * leon (and others) signal it. The launchers (./local.ts, ./ssh.ts) implement it.
 */
import type { HeldJobs } from "./held_jobs.ts";

export interface LaunchResult {
  /** oarexec printed the rendezvous line: the job is running. */
  rendezvous: boolean;
  /** Without rendezvous: the launcher's exit code when it ended (null on timeout). */
  exitCode: number | null;
  /** What oarexec printed on stderr before the rendezvous (for the log), capped. */
  output: string;
}

export interface SignalOptions {
  /** Wait for the signal to be delivered (within TIMEOUT_SSH); default false. */
  wait?: boolean;
  /** `oardel -s`: written to `<tmp>/USER_SIGNAL_<id>` before sending URG. */
  userSignal?: string;
}

export interface Launcher {
  readonly kind: "ssh" | "local";
  /** Starts oarexec on `host` with the descriptor on its stdin; waits for the rendezvous. */
  launch(host: string, descriptor: string): Promise<LaunchResult>;
  /**
   * `signal_oarexec` (docs/modules.md §12.1): CONT then `signal` to the job's oarexec through its
   * pid file. Returns an error text when waiting and it failed, else null.
   */
  signalOarexec(
    host: string,
    jobId: number,
    signal: string,
    opts?: SignalOptions,
  ): Promise<string | null>;
  /** Hosts that do not answer (the built-in node check, docs/differences.md §2). */
  unreachable(hosts: string[]): Promise<string[]>;
  /**
   * Whether each job's oarexec is still on `host` (its pid file names a live process), in one
   * command; null when the host could not be asked (lib/launch/held_jobs.ts). A launcher
   * without it (a test's) gets no such check.
   */
  heldJobs?(host: string, jobIds: number[]): Promise<HeldJobs | null>;
}
