/**
 * Greta's configuration values (docs/modules.md §10.2): wake-up timeouts by batch size, and the
 * keep-alive conditions.
 */

/** `N` ⇒ {1: N}; `"1:500 11:1000 21:2000"` ⇒ {1:500, 11:1000, 21:2000}; empty ⇒ {1: 900}. */
export function fillTimeouts(
  value: string | number,
): { table: Map<number, number>; warnings: string[] } {
  const table = new Map<number, number>();
  const warnings: string[] = [];
  const text = String(value).trim();
  if (/^\d+$/.test(text)) {
    table.set(1, Number(text));
    return { table, warnings };
  }
  for (const pair of text.split(/\s+/).filter((p) => p)) {
    const m = /^(\d+):(\d+)$/.exec(pair);
    if (m) table.set(Number(m[1]), Number(m[2]));
    else warnings.push(`invalid wake-up timeout "${pair}" (expected count:seconds)`);
  }
  if (table.size === 0) table.set(1, 900);
  return { table, warnings };
}

/** The timeout for a batch of `n` nodes: the value of the largest key ≤ n (default key 1). */
export function getTimeout(table: Map<number, number>, n: number): number {
  let best = table.get(1) ?? 900;
  for (const k of [...table.keys()].sort((a, b) => a - b)) {
    if (k <= n) best = table.get(k)!;
  }
  return best;
}

export interface KeepAlive {
  /** SQL condition on resources, admin-written (as OAR's). */
  condition: string;
  min: number;
}

export class KeepAliveError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

/**
 * `"<sql condition>:<n>, ..."`. A string that is not that shape at all is exit code 3, a count
 * that is not a number exit code 2, as in OAR.
 */
export function parseKeepAlive(value: string): KeepAlive[] {
  const text = value.trim();
  if (!/.+:\d+/.test(text)) {
    throw new KeepAliveError(3, `ENERGY_SAVING_NODES_KEEPALIVE "${text}" is not "<sql>:<n>, ..."`);
  }
  const out: KeepAlive[] = [];
  for (const part of text.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const i = p.lastIndexOf(":");
    const count = i > 0 ? p.slice(i + 1).trim() : "";
    if (!/^\d+$/.test(count)) {
      throw new KeepAliveError(2, `ENERGY_SAVING_NODES_KEEPALIVE: bad count in "${p}"`);
    }
    out.push({ condition: p.slice(0, i).trim(), min: Number(count) });
  }
  return out;
}
