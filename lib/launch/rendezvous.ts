/**
 * The launch handshake shared by both launchers (docs/modules.md §4.3 step 10): write the
 * descriptor on oarexec's stdin, then wait at most 2×TIMEOUT_SSH for a stdout line equal to
 * SSH_RENDEZ_VOUS. Once met, bipbip stops listening (oarexec carries on alone); otherwise the
 * launcher's exit code says why when it ended, and a launcher still running at the deadline is
 * killed.
 */
import type { LaunchResult } from "./types.ts";

const MAX_OUTPUT = 8192;

export async function awaitRendezvous(
  child: Deno.ChildProcess,
  descriptor: string,
  rendezvous: string,
  timeoutMs: number,
  kill: () => void,
): Promise<LaunchResult> {
  let output = "";
  const decoder = new TextDecoder();
  const stderr = child.stderr.getReader();
  const collecting = (async () => {
    try {
      for (;;) {
        const r = await stderr.read();
        if (r.done) return;
        if (output.length < MAX_OUTPUT) output += decoder.decode(r.value, { stream: true });
      }
    } catch { /* cancelled */ }
  })();
  const stdout = child.stdout.getReader();
  const writing = (async () => {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(descriptor));
      await w.close();
    } catch { /* oarexec is gone already: its exit code tells why */ }
  })();
  const reading = (async (): Promise<boolean> => {
    const out = new TextDecoder();
    let pending = "";
    try {
      for (;;) {
        const r = await stdout.read();
        if (r.done) return false;
        pending += out.decode(r.value, { stream: true });
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        if (lines.some((l) => l.replace(/\r$/, "") === rendezvous)) return true;
        if (pending.length > MAX_OUTPUT) pending = pending.slice(-rendezvous.length);
      }
    } catch {
      return false;
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  const met = await Promise.race([reading, deadline]);
  clearTimeout(timer);
  await writing;
  if (met === true) {
    // oarexec lives on: stop listening and let this process end without it.
    await stdout.cancel().catch(() => {});
    await stderr.cancel().catch(() => {});
    child.unref();
    return { rendezvous: true, exitCode: null, output };
  }
  if (met === "timeout") {
    kill();
    await stdout.cancel().catch(() => {});
    await stderr.cancel().catch(() => {});
    await child.status;
    return { rendezvous: false, exitCode: null, output: output + "\n(no rendezvous in time)" };
  }
  // End of stdout without the rendezvous: oarexec (or ssh) is exiting.
  let capTimer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    child.status,
    new Promise<null>((r) => (capTimer = setTimeout(() => r(null), timeoutMs))),
  ]);
  clearTimeout(capTimer);
  if (status === null) kill();
  await Promise.race([collecting, new Promise((r) => setTimeout(r, 1000))]);
  await stderr.cancel().catch(() => {});
  return { rendezvous: false, exitCode: status?.code ?? null, output };
}
