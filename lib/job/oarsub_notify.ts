/**
 * The one way the server tells an interactive oarsub something (OAR's `notify_tcp_socket`): lines
 * to the job's `info_type` host:port, each newline-terminated, then the connection is closed.
 * bipbip (`Starting...`, `GOOD JOB`, `ERROR: ...`), leon (`JOB_KILLED`), the meta-scheduler
 * (`GOOD RESERVATION`, `BAD JOB`, start predictions) and NodeChangeState (a hold) all use it.
 *
 * An oarsub is a user's process on some frontend: it may be gone, or stopped with its socket
 * full, so the connection and the write together are bounded in time, and a failure is an
 * answer (false), never an exception; each caller decides what an undelivered line means.
 */
import { parseInfoType } from "../protocol/mod.ts";

/** Sends lines to oarsub; resolves to whether they were all written. */
export type OarsubNotify = (
  infoType: string | null | undefined,
  lines: readonly string[],
) => Promise<boolean>;

/** Connecting and writing, together. */
export const OARSUB_NOTIFY_TIMEOUT_MS = 5000;

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed (by the deadline, or by the peer)
  }
}

/** `lines` to the oarsub at `infoType` (`host:port`, user data: anything else is refused). */
export async function notifyOarsub(
  infoType: string | null | undefined,
  lines: readonly string[],
  timeoutMs: number = OARSUB_NOTIFY_TIMEOUT_MS,
): Promise<boolean> {
  const target = parseInfoType(infoType);
  if (!target.ok) return false;
  const deadline = new AbortController();
  let conn: Deno.TcpConn | undefined;
  // The abort stops a connect; closing the connection is what stops a write that blocks.
  const timer = setTimeout(() => {
    deadline.abort();
    closeQuietly(conn);
  }, timeoutMs);
  try {
    conn = await Deno.connect({
      hostname: target.value.host,
      port: target.value.port,
      signal: deadline.signal,
    });
    if (deadline.signal.aborted) return false;
    const data = new TextEncoder().encode(lines.map((l) => l + "\n").join(""));
    let written = 0;
    while (written < data.length) written += await conn.write(data.subarray(written));
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}
