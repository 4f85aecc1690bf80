/**
 * Interval sets of resource ids: sorted, disjoint, non-adjacent inclusive ranges stored flat as
 * `[a0, b0, a1, b1, ...]` with `a0 <= b0 < a1 - 1`. The scheduler works on these rather than on
 * per-resource arrays, so that the cost of a set operation follows the number of ranges (a
 * handful on a cluster whose resources are ordered by host) and not the number of cores.
 *
 * Every function returns a normalised set (possibly one of its arguments, unchanged) and never
 * mutates its arguments.
 */

/** A normalised interval set (see the module comment). */
export type Itvs = readonly number[];

export const EMPTY: Itvs = Object.freeze([]) as Itvs;

/** `[a, b]` inclusive, or empty when b < a. */
export function range(a: number, b: number): Itvs {
  return b < a ? EMPTY : [a, b];
}

/** The set of the given ids (any order, duplicates allowed). */
export function fromIds(ids: Iterable<number>): Itvs {
  const sorted = Int32Array.from(ids).sort();
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const x = sorted[i];
    const n = out.length;
    if (n > 0 && x <= out[n - 1] + 1) {
      if (x > out[n - 1]) out[n - 1] = x;
    } else out.push(x, x);
  }
  return out;
}

/** Normalises arbitrary `[a, b]` pairs (unsorted, overlapping, adjacent). */
export function fromRanges(pairs: readonly (readonly [number, number])[]): Itvs {
  const sorted = pairs.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  for (const [a, b] of sorted) {
    const n = out.length;
    if (n > 0 && a <= out[n - 1] + 1) {
      if (b > out[n - 1]) out[n - 1] = b;
    } else out.push(a, b);
  }
  return out;
}

/** The ids, ascending. */
export function toIds(s: Itvs): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 2) for (let x = s[i]; x <= s[i + 1]; x++) out.push(x);
  return out;
}

export function isEmpty(s: Itvs): boolean {
  return s.length === 0;
}

/** Number of ids in the set. */
export function count(s: Itvs): number {
  let n = 0;
  for (let i = 0; i < s.length; i += 2) n += s[i + 1] - s[i] + 1;
  return n;
}

export function equals(x: Itvs, y: Itvs): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Appends [a, b] to a set under construction whose last range ends before a. */
function push(out: number[], a: number, b: number): void {
  const n = out.length;
  if (n > 0 && a <= out[n - 1] + 1) {
    if (b > out[n - 1]) out[n - 1] = b;
  } else out.push(a, b);
}

export function union(x: Itvs, y: Itvs): Itvs {
  if (x.length === 0) return y;
  if (y.length === 0) return x;
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < x.length || j < y.length) {
    if (j >= y.length || (i < x.length && x[i] <= y[j])) {
      push(out, x[i], x[i + 1]);
      i += 2;
    } else {
      push(out, y[j], y[j + 1]);
      j += 2;
    }
  }
  return out;
}

export function intersect(x: Itvs, y: Itvs): Itvs {
  if (x.length === 0 || y.length === 0) return EMPTY;
  // One side a single range (a block of the hierarchy, a host): bisection, not a full walk.
  if (y.length === 2) return clip(x, y[0], y[1]);
  if (x.length === 2) return clip(y, x[0], x[1]);
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    const a = Math.max(x[i], y[j]);
    const b = Math.min(x[i + 1], y[j + 1]);
    if (a <= b) out.push(a, b);
    if (x[i + 1] < y[j + 1]) i += 2;
    else j += 2;
  }
  return out;
}

/** s ∩ [a, b]: O(log |s| + ranges kept). */
export function clip(s: Itvs, a: number, b: number): Itvs {
  const pairs = s.length >> 1;
  // First range ending at or after a.
  let lo = 0, hi = pairs;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[2 * mid + 1] < a) lo = mid + 1;
    else hi = mid;
  }
  if (lo === pairs || s[2 * lo] > b) return EMPTY;
  // Nothing to cut (a constraint covering every free resource): the set itself.
  if (lo === 0 && s[0] >= a && s[s.length - 1] <= b) return s;
  const out: number[] = [];
  for (let k = lo; k < pairs && s[2 * k] <= b; k++) {
    out.push(s[2 * k] > a ? s[2 * k] : a, s[2 * k + 1] < b ? s[2 * k + 1] : b);
  }
  return out;
}

/**
 * x ∩ y when it holds at least `min` ids, else null: the slot search's inner step, which gives
 * up on a window as soon as it is too small, without a separate counting pass.
 */
export function intersectAtLeast(x: Itvs, y: Itvs, min: number): Itvs | null {
  // A window's running intersection soon holds far fewer ranges than a slot: walk the small
  // set and find its place in the large one by bisection.
  if (x.length * 8 < y.length) return intersectSmall(x, y, min);
  if (y.length * 8 < x.length) return intersectSmall(y, x, min);
  const out: number[] = [];
  let n = 0;
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    const a = x[i] > y[j] ? x[i] : y[j];
    const b = x[i + 1] < y[j + 1] ? x[i + 1] : y[j + 1];
    if (a <= b) {
      out.push(a, b);
      n += b - a + 1;
    }
    if (x[i + 1] < y[j + 1]) i += 2;
    else j += 2;
  }
  return n >= min ? out : null;
}

/** intersectAtLeast for |small| << |large|: O(|small| log |large|). */
function intersectSmall(small: Itvs, large: Itvs, min: number): Itvs | null {
  const out: number[] = [];
  let n = 0;
  const pairs = large.length >> 1;
  let lo = 0;
  for (let i = 0; i < small.length; i += 2) {
    const a = small[i], b = small[i + 1];
    // First range of `large` ending at or after a (search from the previous position on).
    let hi = pairs;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (large[2 * mid + 1] < a) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < pairs && large[2 * k] <= b; k++) {
      const s = large[2 * k] > a ? large[2 * k] : a;
      const e = large[2 * k + 1] < b ? large[2 * k + 1] : b;
      out.push(s, e);
      n += e - s + 1;
    }
  }
  return n >= min ? out : null;
}

/** x minus y. */
export function difference(x: Itvs, y: Itvs): Itvs {
  if (x.length === 0 || y.length === 0) return x;
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < x.length; i += 2) {
    let a = x[i];
    const b = x[i + 1];
    while (j < y.length && y[j + 1] < a) j += 2;
    let k = j;
    while (k < y.length && y[k] <= b) {
      if (y[k] > a) out.push(a, y[k] - 1);
      a = Math.max(a, y[k + 1] + 1);
      if (a > b) break;
      k += 2;
    }
    if (a <= b) out.push(a, b);
  }
  return out;
}

/** Whether every id of `sub` is in `sup`. */
export function isSubset(sub: Itvs, sup: Itvs): boolean {
  let j = 0;
  for (let i = 0; i < sub.length; i += 2) {
    while (j < sup.length && sup[j + 1] < sub[i]) j += 2;
    if (j >= sup.length || sup[j] > sub[i] || sup[j + 1] < sub[i + 1]) return false;
  }
  return true;
}

/** Whether the two sets share an id. */
export function overlaps(x: Itvs, y: Itvs): boolean {
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    if (Math.max(x[i], y[j]) <= Math.min(x[i + 1], y[j + 1])) return true;
    if (x[i + 1] < y[j + 1]) i += 2;
    else j += 2;
  }
  return false;
}

/** Whether id is in the set (binary search). */
export function contains(s: Itvs, id: number): boolean {
  let lo = 0, hi = s.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (s[2 * mid + 1] < id) lo = mid + 1;
    else if (s[2 * mid] > id) hi = mid - 1;
    else return true;
  }
  return false;
}

/** The n smallest ids of the set, or null when it holds fewer than n. */
export function takeFirst(s: Itvs, n: number): Itvs | null {
  if (n <= 0) return EMPTY;
  const out: number[] = [];
  let left = n;
  for (let i = 0; i < s.length; i += 2) {
    const size = s[i + 1] - s[i] + 1;
    if (size >= left) {
      out.push(s[i], s[i] + left - 1);
      return out;
    }
    out.push(s[i], s[i + 1]);
    left -= size;
  }
  return null;
}

/** The smallest id, or -1 for the empty set. */
export function first(s: Itvs): number {
  return s.length === 0 ? -1 : s[0];
}

/** `1-3,7` style text, for logs and test messages. */
export function format(s: Itvs): string {
  const parts: string[] = [];
  for (let i = 0; i < s.length; i += 2) {
    parts.push(s[i] === s[i + 1] ? `${s[i]}` : `${s[i]}-${s[i + 1]}`);
  }
  return parts.join(",");
}
