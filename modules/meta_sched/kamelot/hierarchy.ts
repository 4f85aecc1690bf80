/**
 * Hierarchical resource requests (`/network_address=2/core=4`), matched Kamelot's way
 * ("scattered blocks"): each hierarchy label (HIERARCHY_LABELS) splits the resources into
 * blocks, one per distinct value of that column; a request lists (label, count) pairs top-down.
 * At the bottom level a block is taken only when all of its members are available; above it, a
 * block is taken when the levels below can be satisfied inside it.
 *
 * Counts: n > 0, ALL (-1: every block of the level within the job's constraint set, all of them
 * free) and BEST (-2: as many blocks as are free, at least one) — docs/differences.md #57.
 *
 * Resources are "ordered ids" (0-based positions in SCHEDULER_RESOURCE_ORDER). When the order
 * groups a block's members together (the usual case: ordered by host), every block is one range
 * and a level is two sorted arrays searched by bisection, so that matching costs a few
 * operations per free range instead of one per core.
 */
import {
  count,
  difference,
  EMPTY,
  intersect,
  isSubset,
  type Itvs,
  overlaps,
  range,
  union,
} from "./intervals.ts";

export const ALL = -1;
export const BEST = -2;

export interface Level {
  label: string;
  /** Blocks, ordered by their smallest member. */
  blocks: Itvs[];
  /** When every block is a single range: their bounds (both ascending). */
  starts: Int32Array | null;
  ends: Int32Array | null;
}

export type Hierarchy = ReadonlyMap<string, Level>;

export interface LevelRequest {
  label: string;
  /** n > 0, ALL or BEST. */
  count: number;
}

/** One resource group of a moldable: what to take, among which resources. */
export interface GroupRequest {
  levels: LevelRequest[];
  /** Ordered ids the job may use for this group (properties AND group property). */
  constraint: Itvs;
}

/** Builds a level from each resource's value of its label (index = ordered id). */
export function buildLevel(label: string, values: readonly unknown[]): Level {
  return levelOfRuns(label, values) ?? levelOfValues(label, values);
}

/** A value's block key: NULL is a value of its own (every resource is in one block per level). */
function blockKey(v: unknown): string {
  return v === null || v === undefined ? "\0null" : String(v);
}

/**
 * The usual case, in one pass: resources ordered so that each value's members are one run of
 * consecutive ids (by host, then cpu, core...). Null when a value comes back after another one.
 */
function levelOfRuns(label: string, values: readonly unknown[]): Level | null {
  const seen = new Set<string>();
  const starts: number[] = [], ends: number[] = [];
  let previous: string | null = null;
  for (let id = 0; id < values.length; id++) {
    const key = blockKey(values[id]);
    if (key === previous) {
      ends[ends.length - 1] = id;
      continue;
    }
    if (seen.has(key)) return null;
    seen.add(key);
    previous = key;
    starts.push(id);
    ends.push(id);
  }
  return {
    label,
    blocks: starts.map((a, k) => [a, ends[k]]),
    starts: Int32Array.from(starts),
    ends: Int32Array.from(ends),
  };
}

/** Any order: members grouped by value, blocks as interval sets ordered by smallest member. */
function levelOfValues(label: string, values: readonly unknown[]): Level {
  const byValue = new Map<string, number[]>();
  for (let id = 0; id < values.length; id++) {
    const key = blockKey(values[id]);
    const members = byValue.get(key);
    if (members) members.push(id);
    else byValue.set(key, [id]);
  }
  const blocks: Itvs[] = [];
  for (const ids of byValue.values()) {
    const out: number[] = [];
    for (const x of ids) {
      const n = out.length;
      if (n > 0 && x === out[n - 1] + 1) out[n - 1] = x;
      else out.push(x, x);
    }
    blocks.push(out);
  }
  blocks.sort((a, b) => a[0] - b[0]);
  const simple = blocks.every((b) => b.length === 2);
  return {
    label,
    blocks,
    starts: simple ? Int32Array.from(blocks, (b) => b[0]) : null,
    ends: simple ? Int32Array.from(blocks, (b) => b[1]) : null,
  };
}

/** First index i with arr[i] >= x (arr ascending). */
export function lowerBound(arr: Int32Array, x: number): number {
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index i with arr[i] > x. */
function upperBound(arr: Int32Array, x: number): number {
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of blocks lying entirely inside `s`. */
function countInside(level: Level, s: Itvs): number {
  if (level.starts && level.ends) {
    let n = 0;
    for (let i = 0; i < s.length; i += 2) {
      const f = lowerBound(level.starts, s[i]);
      const l = upperBound(level.ends, s[i + 1]);
      if (l > f) n += l - f;
    }
    return n;
  }
  let n = 0;
  for (const b of level.blocks) if (isSubset(b, s)) n++;
  return n;
}

/**
 * Union of the first `n` blocks lying entirely inside `avail` (all of them when n is
 * Infinity), with how many were taken.
 */
function takeInside(level: Level, avail: Itvs, n: number): { res: Itvs; taken: number } {
  const out: number[] = [];
  let taken = 0;
  if (level.starts && level.ends) {
    // Every id belongs to a block and blocks are disjoint ranges, so the blocks inside one
    // free range are consecutive and their union is one range.
    for (let i = 0; i < avail.length && taken < n; i += 2) {
      const f = lowerBound(level.starts, avail[i]);
      const l = upperBound(level.ends, avail[i + 1]);
      if (l <= f) continue;
      const k = Math.min(l - f, n - taken);
      out.push(level.starts[f], level.ends[f + k - 1]);
      taken += k;
    }
    return { res: out, taken };
  }
  let res: Itvs = EMPTY;
  for (const b of level.blocks) {
    if (taken >= n) break;
    if (isSubset(b, avail)) {
      res = union(res, b);
      taken++;
    }
  }
  return { res, taken };
}

/** Calls fn(block) for each block meeting `s`, in order, until fn returns false. */
function forEachMeeting(level: Level, s: Itvs, fn: (block: Itvs) => boolean): void {
  if (level.starts && level.ends) {
    let last = -1;
    for (let i = 0; i < s.length; i += 2) {
      let k = Math.max(lowerBound(level.ends, s[i]), last + 1);
      for (; k < level.starts.length && level.starts[k] <= s[i + 1]; k++) {
        last = k;
        if (!fn(range(level.starts[k], level.ends[k]))) return;
      }
    }
    return;
  }
  for (const b of level.blocks) if (overlaps(b, s) && !fn(b)) return;
}

/** Block k of a level. */
function blockAt(level: Level, k: number): Itvs {
  return level.starts && level.ends ? range(level.starts[k], level.ends[k]) : level.blocks[k];
}

/**
 * Calls fn(k, n) for each block k meeting `s`, in order, with n = how many ids of `s` it
 * holds, until fn returns false. For single-range blocks, one walk along `s` and the blocks
 * (with a bisection to jump over blocks meeting nothing), allocating nothing.
 */
function forEachMeetingCounted(
  level: Level,
  s: Itvs,
  fn: (k: number, n: number) => boolean,
): void {
  const { starts, ends } = level;
  if (starts && ends) {
    const pairs = s.length >> 1;
    const blocks = starts.length;
    let p = 0;
    let k = pairs > 0 ? lowerBound(ends, s[0]) : blocks;
    while (k < blocks) {
      const a = starts[k], b = ends[k];
      while (p < pairs && s[2 * p + 1] < a) p++;
      if (p === pairs) return;
      if (s[2 * p] > b) {
        // Block k meets nothing: go to the first block reaching the next free id.
        k = lowerBound(ends, s[2 * p]);
        continue;
      }
      let n = 0;
      for (let q = p; q < pairs && s[2 * q] <= b; q++) {
        n += (s[2 * q + 1] < b ? s[2 * q + 1] : b) - (s[2 * q] > a ? s[2 * q] : a) + 1;
      }
      if (!fn(k, n)) return;
      k++;
    }
    return;
  }
  for (let k = 0; k < level.blocks.length; k++) {
    const b = level.blocks[k];
    if (overlaps(b, s) && !fn(k, count(intersect(b, s)))) return;
  }
}

/**
 * Matches `levels[h..]` within `avail` (free AND allowed); `scope` (allowed, inside the parent
 * block) defines what ALL means. Returns the resources taken, or null.
 */
function matchFrom(
  hy: Hierarchy,
  levels: readonly LevelRequest[],
  h: number,
  avail: Itvs,
  scope: Itvs,
): Itvs | null {
  const req = levels[h];
  const level = hy.get(req.label)!;
  if (h === levels.length - 1) {
    if (req.count === ALL) {
      const needed = countInside(level, scope);
      if (needed === 0) return null;
      const { res, taken } = takeInside(level, avail, needed);
      return taken === needed ? res : null;
    }
    const want = req.count === BEST ? Infinity : req.count;
    const { res, taken } = takeInside(level, avail, want);
    if (req.count === BEST) return taken > 0 ? res : null;
    return taken === want ? res : null;
  }
  let needed = req.count === ALL ? 0 : req.count === BEST ? Infinity : req.count;
  if (req.count === ALL) {
    forEachMeeting(level, scope, () => (needed++, true));
    if (needed === 0) return null;
  }
  // A block holding fewer available resources than the levels below need at least cannot
  // succeed: it is passed over on its count alone, before any set is built (most blocks of a
  // busy window fail so).
  const below = minLevels(levels, h + 1);
  let res: Itvs = EMPTY;
  let taken = 0;
  let failed = false;
  forEachMeetingCounted(level, avail, (k, n) => {
    let sub: Itvs | null = null;
    if (n >= below) {
      const block = blockAt(level, k);
      sub = matchFrom(hy, levels, h + 1, intersect(avail, block), intersect(scope, block));
    }
    if (sub !== null) {
      res = union(res, sub);
      taken++;
    } else if (req.count === ALL) {
      failed = true;
      return false;
    }
    return taken < needed;
  });
  if (failed) return null;
  if (req.count === BEST) return taken > 0 ? res : null;
  return taken === needed ? res : null;
}

/**
 * A lower bound of the resources a match of `levels[h..]` takes: blocks of one level are
 * disjoint and non-empty, so n blocks each holding a match below hold at least n times its
 * bound (ALL and BEST take at least one block).
 */
function minLevels(levels: readonly LevelRequest[], h: number): number {
  let p = 1;
  for (let k = h; k < levels.length; k++) if (levels[k].count > 0) p *= levels[k].count;
  return p;
}

/** Resources satisfying one group within `free`, or null. */
export function matchGroup(hy: Hierarchy, group: GroupRequest, free: Itvs): Itvs | null {
  if (group.levels.length === 0) return null;
  const avail = intersect(free, group.constraint);
  if (avail.length === 0) return null;
  return matchFrom(hy, group.levels, 0, avail, group.constraint);
}

/** Resources satisfying all groups of a moldable at once (disjoint), or null. */
export function matchGroups(
  hy: Hierarchy,
  groups: readonly GroupRequest[],
  free: Itvs,
): Itvs | null {
  let taken: Itvs = EMPTY;
  let rest = free;
  for (const g of groups) {
    const r = matchGroup(hy, g, rest);
    if (r === null) return null;
    taken = union(taken, r);
    rest = difference(rest, r);
  }
  return taken;
}

/**
 * A lower bound of the resources any match needs (product of the positive counts of each
 * group, ALL and BEST counting one), used to skip windows too small to bother.
 */
export function minResources(groups: readonly GroupRequest[]): number {
  let total = 0;
  for (const g of groups) total += minLevels(g.levels, 0);
  return total;
}

const singles = new WeakMap<Level, boolean>();

/**
 * For a request of n > 0 blocks of one level whose blocks are single resources (resource_id):
 * n, since its match within a free set is the set's first n ids of its constraint (matchFrom's
 * takeInside). 0 for any other request.
 */
export function singleCount(hy: Hierarchy, groups: readonly GroupRequest[]): number {
  if (groups.length !== 1 || groups[0].levels.length !== 1) return 0;
  const req = groups[0].levels[0];
  const level = hy.get(req.label);
  if (req.count <= 0 || level === undefined) return 0;
  return isSingleLevel(level) ? req.count : 0;
}

/** Whether every block of the level is one resource (resource_id, or globally numbered cores). */
function isSingleLevel(level: Level): boolean {
  let single = singles.get(level);
  if (single === undefined) {
    const { starts, ends } = level;
    single = starts !== null && ends !== null && starts.every((a, k) => a === ends[k]);
    singles.set(level, single);
  }
  return single;
}

/**
 * `count` blocks of a level of single-range blocks (hosts), `each` resources in every one of
 * them from a level of single resources (cores): `/host=2/core=4`, the commonest request after
 * plain counts. Within a free set its match is, host after host in order, the first `each` free
 * ids of each host holding that many, until `count` hosts (what matchFrom does, so
 * SlotSet.findFirstBlocks can read it from bitsets without building the window's free set).
 */
export interface BlocksRequest {
  starts: Int32Array;
  ends: Int32Array;
  count: number;
  each: number;
}

/** The request as a BlocksRequest when it is one (one group, as above), else null. */
export function blocksRequest(
  hy: Hierarchy,
  groups: readonly GroupRequest[],
): BlocksRequest | null {
  if (groups.length !== 1 || groups[0].levels.length !== 2) return null;
  const [outer, inner] = groups[0].levels;
  const hosts = hy.get(outer.label);
  const leaves = hy.get(inner.label);
  if (outer.count <= 0 || inner.count <= 0 || !hosts || !leaves) return null;
  if (hosts.starts === null || hosts.ends === null || !isSingleLevel(leaves)) return null;
  return { starts: hosts.starts, ends: hosts.ends, count: outer.count, each: inner.count };
}

/** Checks that every label of the groups is a level of the hierarchy; returns the unknown one. */
export function unknownLabel(hy: Hierarchy, groups: readonly GroupRequest[]): string | null {
  for (const g of groups) for (const l of g.levels) if (!hy.has(l.label)) return l.label;
  return null;
}
