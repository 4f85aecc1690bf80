/**
 * What every message family of lib/protocol/ shares: the parse result (parsers never throw),
 * the size limits, Python-compatible JSON, and the checks on ids, lists and host names. Only
 * Parsed, MAX_MESSAGE_BYTES, pyJson and isValidHostname are re-exported by mod.ts; the rest is
 * for the family files.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** Messages larger than this are refused before parsing: no legitimate one comes close. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** The longest text line taken on SERVER_PORT and from a child's stream. */
export const MAX_LINE = 4096;

/**
 * JSON text laid out as Python's `json.dumps` does by default (`", "` and `": "` separators,
 * non-ASCII escaped), which is what pyzmq's `send_json` puts on the wire in OAR 3.
 */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("pyJson: non-finite number");
    return String(value);
  }
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
    );
  }
  if (Array.isArray(value)) return "[" + value.map(pyJson).join(", ") + "]";
  if (typeof value === "object") {
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => pyJson(k) + ": " + pyJson(v));
    return "{" + parts.join(", ") + "}";
  }
  throw new TypeError(`pyJson: cannot encode ${typeof value}`);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes bytes (or passes text through) and parses a JSON object; never throws. */
export function parseJsonObject(
  input: Uint8Array | string,
  maxBytes = MAX_MESSAGE_BYTES,
): Parsed<Record<string, unknown>> {
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    if (input.byteLength > maxBytes) {
      return fail(`message too large (${input.byteLength} bytes)`);
    }
    try {
      text = decoder.decode(input);
    } catch {
      return fail("message is not valid UTF-8");
    }
  }
  if (text.length > maxBytes) return fail(`message too large (${text.length} chars)`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return fail(`message is not JSON: ${(e as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return fail("message is not a JSON object");
  }
  return ok(data as Record<string, unknown>);
}

export function isJobId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

const HOSTNAME_RE = /^[A-Za-z0-9_.:-]{1,255}$/;

/** A host name as it appears in `network_address`; refuses shell and SQL metacharacters. */
export function isValidHostname(s: string): boolean {
  return HOSTNAME_RE.test(s);
}
