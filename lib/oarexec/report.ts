/**
 * oarexec's report to the server (spec §4.5): the line `OAREXEC_<id>_<exit>_<script>_<challenge>`
 * sent over TCP to the appendice proxy. The server may be down or unreachable for a while, so
 * delivery is retried with back-off (1 s doubling up to 60 s) within a total bound; once a
 * connection took the whole line it is never sent again (the reference's re-send loop produced
 * late duplicates).
 */
export interface ReportOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this long (default 24 h). */
  maxTotalMs?: number;
  /** Each connection attempt's limit. */
  connectTimeoutMs?: number;
  onFailure?: (attempt: number, error: string, nextDelayMs: number) => void;
}

/** One attempt: connect, write the whole line, close. */
export async function sendLine(
  hostname: string,
  port: number,
  line: string,
  timeoutMs: number,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname, port });
  const conn = await Promise.race([
    connecting,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error("connection timed out")), timeoutMs)
    ),
  ]).finally(() => clearTimeout(timer)).catch((e) => {
    // A connection that completes after the deadline is closed unused.
    connecting.then((c) => c.close()).catch(() => {});
    throw e;
  });
  try {
    const bytes = new TextEncoder().encode(line);
    let written = 0;
    while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
  } finally {
    try {
      conn.close();
    } catch { /* closed by the peer */ }
  }
}

/** true once delivered; false when the total bound ran out. */
export async function deliverReport(
  hostname: string,
  port: number,
  line: string,
  opts: ReportOptions = {},
): Promise<boolean> {
  const initial = opts.initialDelayMs ?? 1000;
  const max = opts.maxDelayMs ?? 60_000;
  const deadline = Date.now() + (opts.maxTotalMs ?? 24 * 3600_000);
  let delay = initial;
  for (let attempt = 1;; attempt++) {
    try {
      await sendLine(hostname, port, line, opts.connectTimeoutMs ?? 30_000);
      return true;
    } catch (e) {
      // Not being allowed to connect does not get better with time.
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        opts.onFailure?.(attempt, String((e as Error).message), -1);
        return false;
      }
      if (Date.now() + delay > deadline) return false;
      opts.onFailure?.(attempt, String((e as Error)?.message ?? e), delay);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, max);
    }
  }
}
