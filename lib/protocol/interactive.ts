/**
 * Interactive notifications: the lines written to oarsub's socket (docs/modules.md §4.3, §11), and
 * the `info_type` (host:port) that says where that socket is. Sent by lib/job/oarsub_notify.ts.
 */
import { fail, isValidHostname, ok, type Parsed } from "./common.ts";

export const InteractiveMessages = {
  starting: "Starting...",
  goodJob: "GOOD JOB",
  badJob: "BAD JOB",
  goodReservation: "GOOD RESERVATION",
  jobKilled: "JOB_KILLED",
  /** `[<now>] Start prediction: <start> (<message>)`, times as OAR's SQL date strings. */
  startPrediction: (now: string, start: string, message: string) =>
    `[${now}] Start prediction: ${start} (${message})`,
  error: (text: string) => `ERROR: ${text}`,
} as const;

/** `info_type` is `host:port`; anything else is refused (it is user-controlled data). */
export function parseInfoType(
  info: string | null | undefined,
): Parsed<{ host: string; port: number }> {
  if (!info) return fail("no info_type");
  const i = info.lastIndexOf(":");
  if (i <= 0) return fail(`info_type ${JSON.stringify(info).slice(0, 80)} is not host:port`);
  const host = info.slice(0, i);
  const port = Number(info.slice(i + 1));
  if (!isValidHostname(host)) return fail(`bad host in info_type`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail("bad port in info_type");
  return ok({ host, port });
}
