/**
 * The ssh launcher (docs/modules.md §4.3 step 7, §12.1): OPENSSH_CMD (split into words, default
 * `/usr/bin/ssh -p 6667`) with `-x -T -oBatchMode=yes -oConnectTimeout=<TIMEOUT_SSH>`, the
 * head node, and the remote command OAREXEC_REMOTE_CMD (default `oarexec`: the node's
 * oarexec artifact on its PATH). The descriptor goes on stdin as for the local launcher.
 */
import type { Config } from "../runtime/config.ts";
import type { Logger } from "../runtime/log.ts";
import type { Launcher, LaunchResult, SignalOptions } from "./types.ts";
import { type HeldJobs, heldJobsScript, outputOf, parseHeldJobs } from "./held_jobs.ts";
import { runSignal } from "./run_signal.ts";
import { sshPort, unreachableHosts } from "./ping.ts";
import { awaitRendezvous } from "./rendezvous.ts";
import { signalOarexecScript } from "./signal_script.ts";

const HOST_RE = /^[A-Za-z0-9_.:-]{1,255}$/;

export class SshLauncher implements Launcher {
  readonly kind = "ssh" as const;

  constructor(readonly config: Config, readonly log?: Logger) {}

  /** The ssh argv up to (and including) the host. */
  sshArgv(host: string): string[] {
    const words = this.config.str("OPENSSH_CMD").trim().split(/\s+/).filter((w) => w !== "");
    return [
      ...words,
      "-x",
      "-T",
      "-oBatchMode=yes",
      `-oConnectTimeout=${this.config.int("TIMEOUT_SSH")}`,
      // A host name starting with '-' would be an option: refused below, and `--` is not
      // understood by every ssh before the host.
      host,
    ];
  }

  remoteCommand(): string {
    return this.config.str("OAREXEC_REMOTE_CMD").trim() || "oarexec";
  }

  async launch(host: string, descriptor: string): Promise<LaunchResult> {
    if (!HOST_RE.test(host) || host.startsWith("-")) {
      return { rendezvous: false, exitCode: null, output: `invalid host ${host}` };
    }
    const [program, ...args] = [...this.sshArgv(host), this.remoteCommand()];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      this.log?.error("cannot run {program}: {error}", { program, error: String(e) });
      return { rendezvous: false, exitCode: null, output: String(e) };
    }
    return await awaitRendezvous(
      child,
      descriptor,
      this.config.str("SSH_RENDEZ_VOUS"),
      2 * this.config.int("TIMEOUT_SSH") * 1000,
      () => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      },
    );
  }

  async signalOarexec(
    host: string,
    jobId: number,
    signal: string,
    opts: SignalOptions = {},
  ): Promise<string | null> {
    if (!HOST_RE.test(host) || host.startsWith("-")) return `invalid host ${host}`;
    const script = signalOarexecScript(this.config, jobId, signal, opts.userSignal);
    if (script === null) return `invalid signal ${signal}`;
    return await runSignal(
      [...this.sshArgv(host), remoteShell(script)],
      this.config,
      opts.wait ?? false,
    );
  }

  unreachable(hosts: string[]): Promise<string[]> {
    return unreachableHosts(
      hosts,
      sshPort(this.config.str("OPENSSH_CMD")),
      this.config.int("TIMEOUT_SSH") * 1000,
    );
  }

  async heldJobs(host: string, jobIds: number[]): Promise<HeldJobs | null> {
    if (!HOST_RE.test(host) || host.startsWith("-")) return null;
    if (jobIds.length === 0) return new Map();
    // The connection's own limit, then as long again for the script.
    const out = await outputOf(
      [...this.sshArgv(host), remoteShell(heldJobsScript(this.config, jobIds))],
      2 * this.config.int("TIMEOUT_SSH") * 1000,
    );
    return out === null ? null : parseHeldJobs(out, jobIds);
  }
}

/** The remote command line: the script run by `sh -c`, quoted for the remote login shell. */
function remoteShell(script: string): string {
  return `sh -c '${script.replaceAll("'", `'\\''`)}'`;
}
