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

/**
 * bipbip_commander could not have the report tagged `token` handled (its bipbip failed, was
 * killed or timed out, or its worker died; the database may be down): the proxy closes the
 * report's connection, so that its oarexec sends it again after its short back-off instead of
 * waiting out the acknowledgement timeout (issue 22).
 */
export function encodeNackLine(token: string): string {
  return `OARNACK_${token}\n`;
}

/** The token of an `OARNACK_<token>` line, else null. */
export function parseNackLine(line: string): string | null {
  const m = /^OARNACK_([0-9a-f]{32})\s*$/.exec(line);
  return m ? m[1] : null;
}

/**
 * A bipbip_commander that starts tells the proxy so (issue 22): whatever the proxy forwarded to
 * its predecessor and holds un-acknowledged may have died with it, so the proxy closes those
 * reports' connections (their oarexecs send them again at once) and asks almighty for a
 * scheduling round (its toLaunch jobs are notified again: an `OARRUN` may have been lost too).
 */
export const COMMANDER_STARTED = "OARCOMMANDER_STARTED";

export function encodeCommanderStartedLine(): string {
  return `${COMMANDER_STARTED}\n`;
}

export function isCommanderStartedLine(line: string): boolean {
  return line.trim() === COMMANDER_STARTED;
}
