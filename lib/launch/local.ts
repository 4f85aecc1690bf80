/**
 * The local launcher: oarexec runs on this host, started through `setsid` so that it leads a
 * session of its own and outlives bipbip (whose process group bipbip_commander kills when
 * bipbip exits). Node names are names of this host: there is nothing to ping.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { spawnDetachedOarexec } from "../spawn.ts";
import type { Launcher, LaunchResult, SignalOptions } from "./launcher.ts";
import { awaitRendezvous } from "./rendezvous.ts";
import { signalOarexecScript } from "./signal_script.ts";

export class LocalLauncher implements Launcher {
  readonly kind = "local" as const;

  constructor(readonly config: Config, readonly log?: Logger) {}

  async launch(host: string, descriptor: string): Promise<LaunchResult> {
    let child: Deno.ChildProcess;
    try {
      child = spawnDetachedOarexec(this.config);
    } catch (e) {
      this.log?.error("cannot start oarexec for {host}: {error}", { host, error: String(e) });
      return { rendezvous: false, exitCode: null, output: String(e) };
    }
    const timeoutMs = 2 * this.config.int("TIMEOUT_SSH") * 1000;
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
    return await runSignal(["sh", "-c", script], this.config, opts.wait ?? false);
  }

  unreachable(_hosts: string[]): Promise<string[]> {
    return Promise.resolve([]);
  }
}

/**
 * Runs a signalling command: without waiting, it is left to finish on its own (a dead node
 * must not hold anyone up, issue #153); waiting, it gets TIMEOUT_SSH.
 */
export async function runSignal(
  argv: string[],
  config: Config,
  wait: boolean,
): Promise<string | null> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: wait ? "piped" : "null",
    }).spawn();
  } catch (e) {
    return `cannot run ${argv[0]}: ${e}`;
  }
  if (!wait) {
    child.unref();
    child.status.catch(() => {});
    return null;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const out = await Promise.race([
    child.output(),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), config.int("TIMEOUT_SSH") * 1000))),
  ]);
  clearTimeout(timer);
  if (out === null) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    return `${argv[0]} timed out`;
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().slice(0, 500);
    return `${argv[0]} exited with ${out.code}${err ? `: ${err}` : ""}`;
  }
  return null;
}
