/**
 * The `-l` grammar of oarsub (OAR 3: oar/lib/submission.py parse_resource_descriptions):
 *
 *   request  := groups [ ',' 'walltime=' WALLTIME ] | 'walltime=' WALLTIME
 *   groups   := group ( '+' group )*
 *   group    := [ '{' property-expression '}' ] ( '/' resource '=' value )+
 *   value    := positive integer | ALL | BEST
 *
 * Several `-l` are moldable alternatives. `nodes` is OAR's alias of `network_address`
 * (OARSUB_NODES_RESOURCES). Resource names must be columns of `resources`; group properties
 * are checked like `-p`. ALL and BEST are stored as -1 and -2, the values the scheduler reads
 * (docs/modules.md §11); BESTHALF, which our scheduler does not implement, is refused
 * (docs/differences.md #57).
 */
import { type ColumnSet, type Expr, parseExpression, PropertyError } from "../properties/expr.ts";
import { parseWalltime, WalltimeError } from "./walltime.ts";

export class ResourceRequestError extends Error {}

export const ALL = -1;
export const BEST = -2;

export interface ResourceLevel {
  resource: string;
  value: number;
}

export interface ResourceGroup {
  /** The `{...}` expression, checked; null when the group has none. */
  property: Expr | null;
  resources: ResourceLevel[];
}

export interface Moldable {
  groups: ResourceGroup[];
  /** Seconds; null when the request gives none (the default walltime applies). */
  walltime: number | null;
}

/** Splits at `sep` outside braces and outside quoted strings inside braces. */
function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "'") quoted = false;
    } else if (depth > 0 && c === "'") {
      quoted = true;
    } else if (c === "{") {
      depth++;
    } else if (c === "}") {
      if (depth === 0) throw new ResourceRequestError(`unbalanced '}' in "${s}"`);
      depth--;
    } else if (c === sep && depth === 0) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += c;
  }
  if (quoted) throw new ResourceRequestError(`unterminated string in "${s}"`);
  if (depth !== 0) throw new ResourceRequestError(`unbalanced '{' in "${s}"`);
  out.push(cur);
  return out;
}

function parseValue(raw: string, where: string): number {
  const v = raw.trim();
  if (v === "ALL") return ALL;
  if (v === "BESTHALF") {
    throw new ResourceRequestError(
      `BESTHALF is not supported (in "${where}"): use BEST or a count`,
    );
  }
  if (v === "BEST") return BEST;
  if (!/^\d+$/.test(v) || Number(v) <= 0 || Number(v) > 2147483647) {
    throw new ResourceRequestError(
      `bad value "${raw}" in "${where}": expected a positive number, ALL or BEST`,
    );
  }
  return Number(v);
}

function parseGroup(
  text: string,
  columns: ColumnSet,
  nodesAlias: string,
): ResourceGroup {
  let rest = text.trim();
  let property: Expr | null = null;
  if (rest.startsWith("{")) {
    const close = findClose(rest);
    if (close < 0) throw new ResourceRequestError(`unbalanced '{' in "${text}"`);
    const src = rest.slice(1, close);
    try {
      property = src.trim() === "" ? null : parseExpression(src, columns);
    } catch (e) {
      if (e instanceof PropertyError) {
        throw new ResourceRequestError(`bad property in "{${src}}": ${e.message}`);
      }
      throw e;
    }
    rest = rest.slice(close + 1).trim();
  }
  if (rest.includes("{") || rest.includes("}")) {
    throw new ResourceRequestError(`a property {...} must open its group, in "${text}"`);
  }
  const resources: ResourceLevel[] = [];
  const seen = new Set<string>();
  for (const part of rest.split("/")) {
    if (part.trim() === "") continue;
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(part);
    if (!m) throw new ResourceRequestError(`expected resource=value, found "${part.trim()}"`);
    let name = m[1].toLowerCase();
    if (name === "nodes") name = nodesAlias;
    if (name === "walltime") {
      throw new ResourceRequestError(`walltime must come after a ',' in "${text}"`);
    }
    if (!columns.has(name)) throw new ResourceRequestError(`unknown resource type "${m[1]}"`);
    if (seen.has(name)) throw new ResourceRequestError(`resource "${m[1]}" given twice`);
    seen.add(name);
    resources.push({ resource: name, value: parseValue(m[2], part) });
  }
  if (resources.length === 0) {
    throw new ResourceRequestError(`no resource=value in "${text.trim() || text}"`);
  }
  return { property, resources };
}

/** Index of the '}' closing the '{' at 0, skipping quoted strings. */
function findClose(s: string): number {
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "'") quoted = false;
    } else if (c === "'") quoted = true;
    else if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Parses one `-l` value. `defaults` is OARSUB_DEFAULT_RESOURCES (used for "walltime=..." alone). */
export function parseResourceRequest(
  text: string,
  columns: ColumnSet,
  opts: { defaults: string; nodesAlias?: string },
): Moldable {
  const nodesAlias = opts.nodesAlias || "network_address";
  const parts = splitTop(text, ",").map((p) => p.trim());
  let walltime: number | null = null;
  const resourceParts: string[] = [];
  for (const p of parts) {
    const wm = /^walltime\s*=\s*(.*)$/i.exec(p);
    if (wm) {
      if (walltime !== null) throw new ResourceRequestError(`walltime given twice in "${text}"`);
      try {
        walltime = parseWalltime(wm[1]);
      } catch (e) {
        if (e instanceof WalltimeError) throw new ResourceRequestError(e.message);
        throw e;
      }
    } else if (p === "") {
      throw new ResourceRequestError(`empty element in "${text}"`);
    } else {
      resourceParts.push(p);
    }
  }
  if (resourceParts.length > 1) {
    throw new ResourceRequestError(
      `unexpected "${resourceParts[1]}" in "${text}": only walltime=... may follow a ','`,
    );
  }
  const spec = resourceParts[0] ?? opts.defaults;
  const groups = splitTop(spec, "+").map((g) => parseGroup(g, columns, nodesAlias));
  return { groups, walltime };
}
