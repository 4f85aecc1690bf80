/**
 * The slot set (Kamelot's Gantt chart): time-ordered, contiguous slots `[b, e]` (inclusive
 * seconds), each with the interval set of resources free during the whole slot. A job placed
 * at `start` for `duration` seconds occupies `[start, start + duration - 1]`: the next job may
 * begin at `start + duration` exactly (walltime boundaries to the second, DECISIONS #104).
 */
import { count, difference, intersect, intersectAtLeast, type Itvs } from "./intervals.ts";

/** OAR's end of time (2^31 - 1): available_upto's "forever" as well. */
export const MAX_TIME = 2147483647;

export interface Slot {
  b: number;
  e: number;
  free: Itvs;
  /** count(free), kept up to date: windows through a slot with too few are skipped whole. */
  n: number;
}

export interface Fit<T> {
  /** The window's first second. */
  start: number;
  /** Index of the slot the window starts in (a resume point for the same request). */
  index: number;
  /** What the matcher returned for the resources free over the whole window. */
  value: T;
}

export class SlotSet {
  /** Contiguous: slots[i].e + 1 === slots[i + 1].b. */
  readonly slots: Slot[];

  constructor(free: Itvs, begin: number, end = MAX_TIME) {
    this.slots = [{ b: begin, e: end, free, n: count(free) }];
  }

  get begin(): number {
    return this.slots[0].b;
  }

  /** Index of the slot holding time t (clamped to the first/last slot). */
  indexAt(t: number): number {
    const s = this.slots;
    let lo = 0, hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid].b <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Makes a slot begin at t (when t falls inside one); returns that slot's index. */
  splitAt(t: number): number {
    const i = this.indexAt(t);
    const s = this.slots[i];
    if (t <= s.b || t > s.e) return t <= s.b ? i : i + 1;
    this.slots.splice(i + 1, 0, { b: t, e: s.e, free: s.free, n: s.n });
    s.e = t - 1;
    return i + 1;
  }

  /**
   * Removes `res` from the free sets over `[start, end]` (inclusive), splitting the slots at
   * both boundaries. Parts outside the slot set's span are ignored.
   */
  occupy(start: number, end: number, res: Itvs): void {
    const first = this.slots[0].b;
    const last = this.slots[this.slots.length - 1].e;
    const a = Math.max(start, first);
    const b = Math.min(end, last);
    if (a > b || res.length === 0) return;
    const i = this.splitAt(a);
    if (b < last) this.splitAt(b + 1);
    for (let k = i; k < this.slots.length && this.slots[k].e <= b; k++) {
      const slot = this.slots[k];
      slot.free = difference(slot.free, res);
      slot.n = count(slot.free);
    }
  }

  /**
   * The earliest window of `duration` seconds starting at or after `minStart` (and in a slot
   * of index >= `fromIndex`) over which `match` succeeds on the resources free during the
   * whole window. `minCount` prunes windows holding fewer free resources than any match needs.
   */
  findFirst<T>(
    minStart: number,
    duration: number,
    match: (avail: Itvs) => T | null,
    opts: { fromIndex?: number; minCount?: number } = {},
  ): Fit<T> | null {
    const s = this.slots;
    const minCount = opts.minCount ?? 1;
    let i = Math.max(opts.fromIndex ?? 0, this.indexAt(minStart));
    for (; i < s.length; i++) {
      if (s[i].n < minCount) continue;
      const start = Math.max(s[i].b, minStart);
      const end = start + duration - 1;
      if (end > MAX_TIME) return null;
      let avail: Itvs | null = s[i].free;
      let j = i;
      let tooSmall = -1;
      while (s[j].e < end) {
        if (++j >= s.length) return null;
        if (s[j].n < minCount) {
          tooSmall = j;
          break;
        }
        avail = intersectAtLeast(avail, s[j].free, minCount);
        if (avail === null) break;
      }
      // Every window starting from here up to that slot runs through it: skip them all.
      if (tooSmall >= 0) {
        i = tooSmall;
        continue;
      }
      if (avail === null || avail.length === 0) continue;
      const value = match(avail);
      if (value !== null) return { start, index: i, value };
    }
    return null;
  }

  /**
   * The resources free over the whole of `[start, start + duration - 1]` (an advance
   * reservation's fixed window); empty when the window leaves the slot set.
   */
  freeOver(start: number, duration: number): Itvs {
    const s = this.slots;
    const end = start + duration - 1;
    if (start < s[0].b || end > s[s.length - 1].e) return [];
    let j = this.indexAt(start);
    let avail = s[j].free;
    while (s[j].e < end && avail.length > 0) avail = intersect(avail, s[++j].free);
    return avail;
  }
}
