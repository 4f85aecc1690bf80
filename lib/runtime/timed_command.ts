/**
 * Runs an external command (node checks, healing and suspend scripts, ssh) with an argument
 * vector — never through a shell — optional stdin text and a deadline. The child leads its own
 * process group, so that on timeout the whole group can be killed (when the permissions allow
 * signalling a group; otherwise the child itself is killed).
 */

export interface TimedCommandOptions {
  /** Text written to the child's stdin (then closed); stdin is /dev/null when absent. */
  stdin?: string;
  /** Milliseconds before the child (and its group) is killed. */
  timeoutMs: number;
  /** Extra environment variables (the rest is inherited). */
  env?: Record<string, string>;
  /** Output kept per stream, in characters (the rest is dropped). Default 1 MiB. */
  maxOutput?: number;
}

export type TimedCommandResult =
  | { kind: "exited"; code: number; signal: Deno.Signal | null; stdout: string; stderr: string }
  | { kind: "timeout"; stdout: string; stderr: string }
  /** The program could not be started (not found, not executable, not permitted). */
  | { kind: "failed"; error: string };

/** Splits a configured command line (OPENSSH_CMD, PINGCHECKER_*_COMMAND) into argv words. */
export function splitCommandLine(line: string): string[] {
  return line.trim().split(/\s+/).filter((w) => w !== "");
}

/** How long output pipes are still drained after the child exited (a grandchild may hold them). */
const DRAIN_GRACE_MS = 1000;

export async function runTimedCommand(
  argv: readonly string[],
  opts: TimedCommandOptions,
): Promise<TimedCommandResult> {
  if (argv.length === 0) return { kind: "failed", error: "empty command" };
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: opts.env,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (e) {
    return { kind: "failed", error: `cannot run ${argv[0]}: ${(e as Error).message}` };
  }
  const max = opts.maxOutput ?? 1 << 20;
  const out = { stdout: "", stderr: "" };
  const drain = async (s: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of s) {
      if (out[key].length < max) out[key] += decoder.decode(chunk, { stream: true });
    }
  };
  const drained = Promise.all([drain(child.stdout, "stdout"), drain(child.stderr, "stderr")])
    .catch(() => {});
  if (opts.stdin !== undefined) {
    // A child that exits without reading its input must not make us fail (EPIPE).
    (async () => {
      const w = child.stdin.getWriter();
      try {
        await w.write(new TextEncoder().encode(opts.stdin));
        await w.close();
      } catch { /* the child closed its stdin */ }
    })();
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, "SIGKILL");
  }, Math.max(0, opts.timeoutMs));
  const status = await child.status;
  clearTimeout(timer);
  // Whatever the child left behind in its group goes with it.
  if (!timedOut) killGroup(child, "SIGKILL", true);
  let cap: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([drained, new Promise((r) => (cap = setTimeout(r, DRAIN_GRACE_MS)))]);
  clearTimeout(cap);
  if (timedOut) return { kind: "timeout", ...out };
  return { kind: "exited", code: status.code, signal: status.signal, ...out };
}

function killGroup(child: Deno.ChildProcess, sig: Deno.Signal, groupOnly = false): void {
  try {
    Deno.kill(-child.pid, sig);
    return;
  } catch {
    // Signalling a group needs a broader --allow-run than a module has, or it is empty.
  }
  if (groupOnly) return;
  try {
    child.kill(sig);
  } catch { /* already gone */ }
}
