/**
 * Notifications to a waiting oarsub (`notify_tcp_socket` to the job's `info_type` host:port):
 * `GOOD RESERVATION`, `BAD JOB`, start predictions. A line each, newline-terminated; the
 * connection is closed after writing. Failures are reported, never thrown.
 */
import { parseInfoType } from "../../lib/protocol/mod.ts";

/** Sends lines to oarsub; resolves to whether they were all written. */
export type OarsubNotify = (infoType: string | null, lines: string[]) => Promise<boolean>;

/** Seconds allowed to connect and write. */
const TIMEOUT_MS = 5000;

export const tcpOarsubNotify: OarsubNotify = async (infoType, lines) => {
  const target = parseInfoType(infoType);
  if (!target.ok) return false;
  let conn: Deno.TcpConn | undefined;
  const timer = new AbortController();
  const t = setTimeout(() => timer.abort(), TIMEOUT_MS);
  try {
    conn = await Deno.connect({
      hostname: target.value.host,
      port: target.value.port,
      signal: timer.signal,
    } as Deno.ConnectOptions);
    const data = new TextEncoder().encode(lines.map((l) => l + "\n").join(""));
    let written = 0;
    while (written < data.length) {
      if (timer.signal.aborted) return false;
      written += await conn.write(data.subarray(written));
    }
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(t);
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
};

/** `YYYY-MM-DD hh:mm:ss` in local time: OAR's local_to_sql, as oarsub shows it to the user. */
export function sqlTime(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
