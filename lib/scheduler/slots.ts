/**
 * The slot set (Kamelot's Gantt chart): time-ordered, contiguous slots `[b, e]` (inclusive
 * seconds), each with the resources free during the whole slot. A job placed at `start` for
 * `duration` seconds occupies `[start, start + duration - 1]`: the next job may begin at
 * `start + duration` exactly (walltime boundaries to the second, DECISIONS #104).
 *
 * Free resources are bitsets (bitset.ts) over the ordered ids of the initial set: a window's
 * free resources are the AND of its slots, which costs a fixed number of word operations per
 * slot however fragmented the cluster is. Interval sets are produced only for the windows the
 * matcher looks at.
 */
import {
  clearItvs,
  fromItvs,
  partialWords,
  pop32,
  popcount,
  pushWord,
  toItvs,
  wordsFor,
} from "./bitset.ts";
import { difference, intersect, type Itvs, union } from "./intervals.ts";

/**
 * How a job may share resources: its timesharing key (timesharing.ts) and the placeholder it
 * is allowed into (`-t allow=<name>`); when it is itself a placeholder (`-t placeholder=<name>`),
 * the resources it takes stay usable by jobs allowed into it.
 */
export interface Sharing {
  ts?: string | null;
  allow?: string | null;
  placeholder?: string | null;
}

/** OAR's end of time (2^31 - 1): available_upto's "forever" as well. */
export const MAX_TIME = 2147483647;

export class Slot {
  #free: Itvs | null = null;

  constructor(
    public b: number,
    public e: number,
    /** Free resources (bit per ordered id); owned by this slot. */
    public bits: Uint32Array,
    /** Number of free resources: windows through a slot with too few are skipped whole. */
    public n: number,
    /**
     * Indices of the words of `bits` that are not full, in no order: ANDing this slot into a
     * window only changes those (a slot of a mostly idle period has few).
     */
    public partial: number[],
    /**
     * Resources held by timesharing jobs during the slot, by sharing key (timesharing.ts):
     * not free, yet usable by jobs of the same key. Null when none (the usual case). The map
     * and its sets are never changed in place: slots split from one another may share them.
     */
    public ts: ReadonlyMap<string, Itvs> | null = null,
    /**
     * Resources held by placeholder jobs (`-t placeholder=<name>`) during the slot, by name:
     * not free, yet usable by jobs with `-t allow=<name>`, which consume them. Null when none;
     * never changed in place, like `ts`.
     */
    public ph: ReadonlyMap<string, Itvs> | null = null,
  ) {}

  /** Resources a job of timesharing key `key` may use during the slot. */
  sharedFree(key: string): Itvs {
    const held = this.ts?.get(key);
    return held === undefined ? this.free : union(this.free, held);
  }

  /** Resources a job sharing as `sh` says may use during the slot. */
  usable(sh: Sharing): Itvs {
    const base = sh.ts ? this.sharedFree(sh.ts) : this.free;
    const held = sh.allow ? this.ph?.get(sh.allow) : undefined;
    return held === undefined ? base : union(base, held);
  }

  /** Records `res` as held by placeholder jobs of name `name`. */
  hold(name: string, res: Itvs): void {
    const ph = new Map(this.ph ?? []);
    ph.set(name, union(ph.get(name) ?? [], res));
    this.ph = ph;
  }

  /** `res`, taken by a job allowed into placeholder `name`, is no longer held for others. */
  release(name: string, res: Itvs): void {
    const held = this.ph?.get(name);
    if (held === undefined) return;
    const ph = new Map(this.ph!);
    ph.set(name, difference(held, res));
    this.ph = ph;
  }

  /** Records `res` as held by timesharing jobs of key `key`. */
  share(key: string, res: Itvs): void {
    const ts = new Map(this.ts ?? []);
    ts.set(key, union(ts.get(key) ?? [], res));
    this.ts = ts;
  }

  /** The free resources as an interval set (computed once per change). */
  get free(): Itvs {
    return this.#free ??= toItvs(this.bits);
  }

  /** Removes `res` from the free resources. */
  remove(res: Itvs): void {
    const removed = clearItvs(this.bits, res, this.partial);
    if (removed > 0) {
      this.n -= removed;
      this.#free = null;
    }
  }
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
  /** Words of every slot's bitset: ids past the initial set's largest are never free. */
  readonly #words: number;
  /** Scratch accumulator for window intersections, and its non-zero words. */
  readonly #acc: Uint32Array;
  readonly #idx: Int32Array;

  constructor(free: Itvs, begin: number, end = MAX_TIME) {
    this.#words = wordsFor(free.length === 0 ? 0 : free[free.length - 1] + 1);
    const bits = fromItvs(free, this.#words);
    this.#acc = new Uint32Array(this.#words);
    this.#idx = new Int32Array(this.#words);
    this.slots = [new Slot(begin, end, bits, popcount(bits), partialWords(bits))];
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
    this.slots.splice(
      i + 1,
      0,
      new Slot(t, s.e, s.bits.slice(), s.n, s.partial.slice(), s.ts, s.ph),
    );
    s.e = t - 1;
    return i + 1;
  }

  /**
   * Removes `res` from the free sets over `[start, end]` (inclusive), splitting the slots at
   * both boundaries. Parts outside the slot set's span are ignored. With a timesharing key,
   * the resources stay usable by jobs of that key (and by no other job); `sh` says the same of
   * placeholders (and an allowed job consumes what it takes of its placeholder).
   */
  occupy(
    start: number,
    end: number,
    res: Itvs,
    tsKey?: string | null,
    sh: Sharing = {},
  ): void {
    const first = this.slots[0].b;
    const last = this.slots[this.slots.length - 1].e;
    const a = Math.max(start, first);
    const b = Math.min(end, last);
    if (a > b || res.length === 0) return;
    const i = this.splitAt(a);
    if (b < last) this.splitAt(b + 1);
    for (let k = i; k < this.slots.length && this.slots[k].e <= b; k++) {
      this.slots[k].remove(res);
      if (tsKey) this.slots[k].share(tsKey, res);
      if (sh.allow) this.slots[k].release(sh.allow, res);
      if (sh.placeholder) this.slots[k].hold(sh.placeholder, res);
    }
  }

  /**
   * findFirst for a timesharing job of key `key`: a window's resources are, in each of its
   * slots, the free ones plus those held by jobs of the same key. Interval sets rather than
   * bitsets: only timesharing jobs take this path, and the common one stays as fast.
   */
  findFirstShared<T>(
    minStart: number,
    duration: number,
    match: (avail: Itvs) => T | null,
    key: string | Sharing,
  ): Fit<T> | null {
    const sh: Sharing = typeof key === "string" ? { ts: key } : key;
    const s = this.slots;
    for (let i = this.indexAt(minStart); i < s.length; i++) {
      const start = Math.max(s[i].b, minStart);
      const end = start + duration - 1;
      if (end > MAX_TIME) return null;
      let avail = s[i].usable(sh);
      let j = i;
      while (s[j].e < end && avail.length > 0) {
        if (++j >= s.length) return null;
        avail = intersect(avail, s[j].usable(sh));
      }
      if (avail.length === 0) continue;
      const value = match(avail);
      if (value !== null) return { start, index: i, value };
    }
    return null;
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
      // The window's last slot; the free counts alone rule out many windows, before any AND.
      let j = i;
      let tooSmall = -1;
      let seed = i;
      while (s[j].e < end) {
        if (++j >= s.length) return null;
        if (s[j].n < minCount) {
          tooSmall = j;
          break;
        }
        if (s[j].n < s[seed].n) seed = j;
      }
      // Every window starting from here up to that slot runs through it: skip them all.
      if (tooSmall >= 0) {
        i = tooSmall;
        continue;
      }
      const avail = j === i ? s[i].free : this.#freeAcross(i, j, minCount, seed);
      if (avail === null || avail.length === 0) continue;
      const value = match(avail);
      if (value !== null) return { start, index: i, value };
    }
    return null;
  }

  /**
   * Resources free in every slot of [i, j], or null when fewer than `min`. `seed` is the
   * window's slot with the fewest free resources: starting from it, the accumulator is small at
   * once.
   */
  #freeAcross(i: number, j: number, min: number, seed = i): Itvs | null {
    const s = this.slots;
    const acc = this.#acc;
    const idx = this.#idx;
    // Invariants: acc is the AND so far; idx[0..m) lists (ascending) every non-zero word of acc
    // and maybe a few that became zero since. ANDing a slot costs the smaller of m (a busy
    // window: few words left) and the slot's count of non-full words (an idle period: few
    // words touched), whichever way the cluster is loaded.
    const first = s[seed].bits;
    acc.set(first);
    let m = 0;
    for (let w = 0; w < first.length; w++) if (first[w] !== 0) idx[m++] = w;
    for (let k = i; k <= j; k++) {
      if (k === seed) continue;
      const bits = s[k].bits;
      const partial = s[k].partial;
      if (partial.length < m) {
        for (let t = 0; t < partial.length; t++) acc[partial[t]] &= bits[partial[t]];
        continue;
      }
      let kept = 0;
      for (let t = 0; t < m; t++) {
        const w = idx[t];
        const x = acc[w] & bits[w];
        if (x !== 0) {
          acc[w] = x;
          idx[kept++] = w;
        }
      }
      m = kept;
      if (m === 0) return null;
    }
    let n = 0;
    for (let t = 0; t < m; t++) if (acc[idx[t]] !== 0) n += pop32(acc[idx[t]]);
    if (n < min || n === 0) return null;
    const out: number[] = [];
    for (let t = 0; t < m; t++) if (acc[idx[t]] !== 0) pushWord(out, idx[t], acc[idx[t]]);
    return out;
  }

  /**
   * freeOver for a job that shares (`sh`: timesharing key, placeholder it is allowed into):
   * in each slot of the window, the free resources plus those it may share.
   */
  freeOverShared(start: number, duration: number, sh: Sharing): Itvs {
    const s = this.slots;
    const end = start + duration - 1;
    if (start < s[0].b || end > s[s.length - 1].e) return [];
    let i = this.indexAt(start);
    let avail = s[i].usable(sh);
    while (s[i].e < end && avail.length > 0) avail = intersect(avail, s[++i].usable(sh));
    return avail;
  }

  /**
   * The resources free over the whole of `[start, start + duration - 1]` (an advance
   * reservation's fixed window); empty when the window leaves the slot set.
   */
  freeOver(start: number, duration: number): Itvs {
    const s = this.slots;
    const end = start + duration - 1;
    if (start < s[0].b || end > s[s.length - 1].e) return [];
    const i = this.indexAt(start);
    let j = i;
    while (s[j].e < end) j++;
    return i === j ? s[i].free : this.#freeAcross(i, j, 0) ?? [];
  }
}
