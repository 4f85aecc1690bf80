/**
 * The signalling command of both launchers (./local.ts, ./ssh.ts): `sh -c` here, or ssh to the
 * node, running lib/launch/signal_script.ts's script.
 */
import type { Config } from "../runtime/config.ts";

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
