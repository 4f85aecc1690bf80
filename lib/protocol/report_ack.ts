/**
 * Acknowledged oarexec reports (issue 11): oarexec keeps its report's connection open until the
 * proxy writes `OK`; the proxy tags the commander message with a random token, and
 * bipbip_commander sends `OARACK_<token>` to SERVER_PORT once bipbip has handled the report.
 */

/** What the proxy writes back to oarexec once its report was handled. */
export const REPORT_ACK = "OK";
/** Seconds oarexec waits for REPORT_ACK when the descriptor does not say. */
export const REPORT_ACK_TIMEOUT_DEFAULT = 120;

const ACK_TOKEN_RE = /^[0-9a-f]{32}$/;

export function isAckToken(s: unknown): s is string {
  return typeof s === "string" && ACK_TOKEN_RE.test(s);
}

/** 128 random bits: a client cannot guess another's token. */
export function newAckToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function encodeAckLine(token: string): string {
  return `OARACK_${token}\n`;
}

/** The token of an `OARACK_<token>` line, else null (the line is something else). */
export function parseAckLine(line: string): string | null {
  const m = /^OARACK_([0-9a-f]{32})\s*$/.exec(line);
  return m ? m[1] : null;
}
