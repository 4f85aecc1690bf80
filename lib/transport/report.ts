/**
 * oarexec's report to the server (docs/modules.md §4.5): the line
 * `OAREXEC_<id>_<exit>_<script>_<challenge>` sent over TCP to the appendice proxy. The server may
 * be down or unreachable for a while, and a line the proxy took may still be lost (proxy,
 * bipbip_commander or bipbip dying before the job is ended), so a report is acknowledged end to end
 * (issue 11): oarexec keeps the connection open until the proxy writes `OK`, which it does only
 * once bipbip has handled the report. No acknowledgement within `ackTimeoutMs`, or the connection
 * broken, and the line is sent again with back-off (1 s doubling up to 4 s, ±20 % so that the
 * oarexecs of a cluster do not come back in step) within a total bound. A duplicate is harmless:
 * bipbip ignores a report for a job that is no longer running.
 *
 * Why the back-off stays short (issue 22): the server closes a report's connection when the report
 * cannot be handled (its bipbip failed, the database is down, a bipbip_commander restarted), and a
 * restarted proxy breaks them all; each such report is then in within seconds of the repair, not
 * after a minute's back-off. A try costs one connection (refused at once while the proxy is down).
 */
import { REPORT_ACK } from "../protocol/mod.ts";

export interface ReportOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this long (default 24 h). */
  maxTotalMs?: number;
  /** Each connection attempt's limit. */
  connectTimeoutMs?: number;
  /** How long one attempt waits for the acknowledgement (default 120 s). */
  ackTimeoutMs?: number;
  onFailure?: (attempt: number, error: string, nextDelayMs: number) => void;
}

async function connectWithin(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname, port });
  return await Promise.race([
    connecting,
    new Promise<never>((_, reject) =>
      timer = setTimeout(() => reject(new Error("connection timed out")), timeoutMs)
    ),
  ]).finally(() => clearTimeout(timer)).catch((e) => {
    // A connection that completes after the deadline is closed unused.
    connecting.then((c) => c.close()).catch(() => {});
    throw e;
  });
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed by the peer */ }
}

/** One attempt: connect, write the whole line, close (no answer expected). */
export async function sendLine(
  hostname: string,
  port: number,
  line: string,
  timeoutMs: number,
): Promise<void> {
  const conn = await connectWithin(hostname, port, timeoutMs);
  try {
    await writeAll(conn, line);
  } finally {
    closeQuietly(conn);
  }
}

/**
 * One report attempt: connect, write the line, wait for the acknowledgement line. Throws when
 * the connection fails, breaks or stays silent for `ackTimeoutMs`.
 */
export async function sendReport(
  hostname: string,
  port: number,
  line: string,
  connectTimeoutMs: number,
  ackTimeoutMs: number,
): Promise<void> {
  const conn = await connectWithin(hostname, port, connectTimeoutMs);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await writeAll(conn, line);
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`no acknowledgement within ${ackTimeoutMs} ms`));
        // Unblocks the pending read.
        closeQuietly(conn);
      }, ackTimeoutMs);
    });
    silent.catch(() => {});
    await Promise.race([readAck(conn), silent]);
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

/** Reads lines until REPORT_ACK; anything else before it is ignored (at most 4 KiB). */
async function readAck(conn: Deno.Conn): Promise<void> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(512);
  let text = "";
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch (e) {
      throw new Error(`connection broken before the acknowledgement: ${(e as Error).message}`);
    }
    if (n === null) throw new Error("connection closed before the acknowledgement");
    text += decoder.decode(buf.subarray(0, n), { stream: true });
    const lines = text.split("\n");
    text = lines.pop() ?? "";
    if (lines.some((l) => l.trim() === REPORT_ACK)) return;
    if (text.length > 4096) throw new Error("unexpected answer instead of the acknowledgement");
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
  const max = opts.maxDelayMs ?? 4000;
  const deadline = Date.now() + (opts.maxTotalMs ?? 24 * 3600_000);
  let delay = initial;
  for (let attempt = 1;; attempt++) {
    try {
      const ackMs = Math.max(1, Math.min(opts.ackTimeoutMs ?? 120_000, deadline - Date.now()));
      await sendReport(hostname, port, line, opts.connectTimeoutMs ?? 30_000, ackMs);
      return true;
    } catch (e) {
      // Not being allowed to connect does not get better with time.
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        opts.onFailure?.(attempt, String((e as Error).message), -1);
        return false;
      }
      const wait = Math.round(delay * (0.8 + 0.4 * Math.random()));
      if (Date.now() + wait > deadline) return false;
      opts.onFailure?.(attempt, String((e as Error)?.message ?? e), wait);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, max);
    }
  }
}
