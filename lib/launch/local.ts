/**
 * The local launcher: oarexec runs on this host, started through `setsid` so that it leads a
 * session of its own and outlives bipbip (whose process group bipbip_commander kills when
 * bipbip exits). Node names are names of this host: there is nothing to ping.
 */
import { type HeldJobs, localHeldJobs } from "./held_jobs.ts";
import type { Config } from "../runtime/config.ts";
import type { Logger } from "../runtime/log.ts";
import { spawnDetachedOarexec } from "../exec/oarexec_command.ts";
import type { Launcher, LaunchResult, SignalOptions } from "./types.ts";
import { awaitRendezvous } from "./rendezvous.ts";
import { runSignal } from "./run_signal.ts";
import { signalOarexecScript } from "./signal_script.ts";
import {
  connectAgent,
  connectOrStartAgent,
  launchThroughAgent,
  signalThroughAgent,
} from "./agent_client.ts";

/** The descriptor's mode without a full parse (the agent validates it). */
function isPassive(descriptor: string): boolean {
  try {
    return (JSON.parse(descriptor) as { mode?: unknown }).mode === "PASSIVE";
  } catch {
    return false;
  }
}

export class LocalLauncher implements Launcher {
  readonly kind = "local" as const;

  constructor(readonly config: Config, readonly log?: Logger) {}

  /** OAREXEC_LOCAL_AGENT: jobs go to the resident oarexec agent (modules/oarexec/agent.ts). */
  get usesAgent(): boolean {
    return this.config.bool("OAREXEC_LOCAL_AGENT");
  }

  async launch(host: string, descriptor: string): Promise<LaunchResult> {
    const timeoutMs = 2 * this.config.int("TIMEOUT_SSH") * 1000;
    // The agent runs passive jobs; an interactive one keeps its own oarexec.
    if (this.usesAgent && isPassive(descriptor)) {
      const conn = await connectOrStartAgent(this.config);
      if (typeof conn !== "string") {
        return await launchThroughAgent(
          conn,
          descriptor,
          this.config.str("SSH_RENDEZ_VOUS"),
          timeoutMs,
        );
      }
      this.log?.warn("{error}; starting a per-job oarexec for {host}", { error: conn, host });
    }
    let child: Deno.ChildProcess;
    try {
      child = spawnDetachedOarexec(this.config);
    } catch (e) {
      this.log?.error("cannot start oarexec for {host}: {error}", { host, error: String(e) });
      return { rendezvous: false, exitCode: null, output: String(e) };
    }
    return await awaitRendezvous(
      child,
      descriptor,
      this.config.str("SSH_RENDEZ_VOUS"),
      timeoutMs,
      () => {
        // oarexec leads its session: the group id is its pid.
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }
      },
    );
  }

  async signalOarexec(
    _host: string,
    jobId: number,
    signal: string,
    opts: SignalOptions = {},
  ): Promise<string | null> {
    const script = signalOarexecScript(this.config, jobId, signal, opts.userSignal);
    if (script === null) return `invalid signal ${signal}`;
    let agentError: string | null = null;
    if (this.usesAgent) {
      const conn = await connectAgent(this.config).catch(() => null);
      if (conn) {
        const error = agentError = await signalThroughAgent(
          conn,
          jobId,
          signal,
          opts.userSignal,
          this.config.int("TIMEOUT_SSH") * 1000,
        );
        if (error === null) return null;
        // Not the agent's: it may run in an oarexec of its own (interactive); the pid file
        // tells.
        this.log?.debug("agent: {error}; signalling through the pid file", { error });
      }
    }
    const error = await runSignal(["sh", "-c", script], this.config, opts.wait ?? false);
    return error !== null && agentError !== null ? `${agentError}; ${error}` : error;
  }

  unreachable(_hosts: string[]): Promise<string[]> {
    return Promise.resolve([]);
  }

  heldJobs(_host: string, jobIds: number[]): Promise<HeldJobs | null> {
    return localHeldJobs(this.config, jobIds);
  }
}
