/**
 * Durations as OAR writes them: `walltime=H`, `H:M` or `H:M:S` (OAR's hms_str_to_duration:
 * one number is hours), and `H:MM:SS` for display.
 */

export class WalltimeError extends Error {}

/** Seconds of an OAR walltime; refuses empty, negative, non-numeric and zero durations. */
export function parseWalltime(text: string): number {
  const s = text.trim();
  if (!/^\d+(:\d+){0,2}$/.test(s)) {
    throw new WalltimeError(`bad walltime "${text}": expected hours[:minutes[:seconds]]`);
  }
  const [h, m = 0, sec = 0] = s.split(":").map(Number);
  const total = h * 3600 + m * 60 + sec;
  if (total <= 0) throw new WalltimeError(`bad walltime "${text}": must be more than 0`);
  if (total > 2147483647) throw new WalltimeError(`bad walltime "${text}": too long`);
  return total;
}

/** `H:MM:SS` (OAR's duration_to_sql). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** Python's str(timedelta(seconds=n)): `H:MM:SS`, or `D day(s), H:MM:SS`; -1 is "-1 day, 23:59:59". */
export function formatTimedelta(seconds: number): string {
  const s = Math.trunc(seconds);
  const days = Math.floor(s / 86400);
  const rest = s - days * 86400;
  const hms = formatDuration(rest);
  if (days === 0) return hms;
  return `${days} day${Math.abs(days) === 1 ? "" : "s"}, ${hms}`;
}
