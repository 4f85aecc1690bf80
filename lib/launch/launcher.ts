/**
 * How bipbip starts oarexec on a job's head node and how leon (and others) signal it: the
 * `ssh` launcher (OPENSSH_CMD to real nodes) or the `local` one (oarexec as a child on this
 * host, for single-host clusters whose nodes are names of this host). OAREXEC_LAUNCHER picks.
 *
 * This file is the factory: it imports the launchers, which import only ./types.ts.
 */
import type { Config } from "../runtime/config.ts";
import type { Logger } from "../runtime/log.ts";
import type { HeldJobs } from "./held_jobs.ts";
import { LocalLauncher } from "./local.ts";
import { SshLauncher } from "./ssh.ts";
import { localHosts } from "./local_hosts.ts";
import type { Launcher, LaunchResult, SignalOptions } from "./types.ts";

export type { Launcher, LaunchResult, SignalOptions };

export function makeLauncher(config: Config, log?: Logger): Launcher {
  const kind = config.str("OAREXEC_LAUNCHER").trim().toLowerCase() || "ssh";
  if (kind === "local") return new LocalLauncher(config, log);
  if (kind !== "ssh") log?.warn("unknown OAREXEC_LAUNCHER {kind}; using ssh", { kind });
  const ssh = new SshLauncher(config, log);
  const local = localHosts(config);
  return local.size === 0 ? ssh : new PerHostLauncher(ssh, new LocalLauncher(config, log), local);
}

/**
 * The ssh launcher, except for OAREXEC_LOCAL_HOSTS, which get the local one. Its kind is ssh:
 * the node check runs (and passes local hosts, lib/resource/pingchecker.ts) and reports name this host.
 */
export class PerHostLauncher implements Launcher {
  readonly kind = "ssh" as const;

  constructor(
    readonly ssh: Launcher,
    readonly local: Launcher,
    readonly localHosts: ReadonlySet<string>,
  ) {}

  #for(host: string): Launcher {
    return this.localHosts.has(host) ? this.local : this.ssh;
  }

  launch(host: string, descriptor: string): Promise<LaunchResult> {
    return this.#for(host).launch(host, descriptor);
  }

  signalOarexec(host: string, jobId: number, signal: string, opts?: SignalOptions) {
    return this.#for(host).signalOarexec(host, jobId, signal, opts);
  }

  unreachable(hosts: string[]): Promise<string[]> {
    return this.ssh.unreachable(hosts.filter((h) => !this.localHosts.has(h)));
  }

  heldJobs(host: string, jobIds: number[]): Promise<HeldJobs | null> {
    return this.#for(host).heldJobs?.(host, jobIds) ?? Promise.resolve(null);
  }
}
