/**
 * The slot set (Kamelot's Gantt chart): time-ordered, contiguous slots `[b, e]` (inclusive
 * seconds), each with the resources free during the whole slot. A job placed at `start` for
 * `duration` seconds occupies `[start, start + duration - 1]`: the next job may begin at
 * `start + duration` exactly (walltime boundaries to the second, docs/differences.md #104).
 *
 * Free resources are bitsets (bitset.ts) over the ordered ids of the initial set: a window's
 * free resources are the AND of its slots. Two neighbouring slots differ only by the jobs that
 * start or end at their boundary, so each slot keeps the words where it may differ from the
 * one before it, and a window's AND touches only those: a few words per slot however many
 * resources and however fragmented. Interval sets are produced only for the windows the
 * matcher looks at.
 */
import { clearItvs, fromItvs, pop32, popcount, pushWord, toItvs, wordsFor } from "./bitset.ts";
import { difference, intersect, type Itvs, union } from "./intervals.ts";
import { type BlocksRequest, lowerBound } from "./hierarchy.ts";

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
  /**
   * No word of `bits` below this one has a set bit (SlotSet.#firstWord moves it up lazily: a
   * slot's bits are only ever cleared, so a bound found once stays true).
   */
  lo = 0;

  constructor(
    public b: number,
    public e: number,
    /** Free resources (bit per ordered id); owned by this slot. */
    public bits: Uint32Array,
    /** Number of free resources: windows through a slot with too few are skipped whole. */
    public n: number,
    /**
     * Indices of the words of `bits` that may differ from the previous slot's (ascending, no
     * duplicates; a superset is allowed, a missing word is not): ANDing this slot into a window
     * that holds the previous one only changes those.
     */
    public diff: number[],
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
    const removed = clearItvs(this.bits, res);
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
  /** Scratch words of the window intersection under way (#intersect). */
  readonly #acc: Uint32Array;
  /** Which words of #acc belong to the intersection under way (#gen): the others are stale. */
  readonly #stamp: Uint32Array;
  #gen = 0;
  /** mask()'s bitsets, by interval set (requests share their constraint sets). */
  readonly #masks = new WeakMap<Itvs, Uint32Array>();

  constructor(free: Itvs, begin: number, end = MAX_TIME) {
    this.#words = wordsFor(free.length === 0 ? 0 : free[free.length - 1] + 1);
    const bits = fromItvs(free, this.#words);
    this.#acc = new Uint32Array(this.#words);
    this.#stamp = new Uint32Array(this.#words);
    this.slots = [new Slot(begin, end, bits, popcount(bits), [])];
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
    // The new slot equals the one it is cut from; the slot after it keeps its differences.
    const copy = new Slot(t, s.e, s.bits.slice(), s.n, [], s.ts, s.ph);
    copy.lo = s.lo;
    this.slots.splice(i + 1, 0, copy);
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
    let k = i;
    for (; k < this.slots.length && this.slots[k].e <= b; k++) {
      this.slots[k].remove(res);
      if (tsKey) this.slots[k].share(tsKey, res);
      if (sh.allow) this.slots[k].release(sh.allow, res);
      if (sh.placeholder) this.slots[k].hold(sh.placeholder, res);
    }
    // Inside [i, k) neighbours lost the same resources: words that were equal still are. At
    // both edges, the words of `res` may now differ.
    const words = wordsOf(res, this.#words);
    if (i > 0) this.#refreshDiff(i, words);
    if (k < this.slots.length) this.#refreshDiff(k, words);
  }

  /** Slot k's differences from slot k - 1, among its recorded ones and `words`, exactly. */
  #refreshDiff(k: number, words: number[]): void {
    const prev = this.slots[k - 1].bits;
    const slot = this.slots[k];
    const bits = slot.bits;
    const out: number[] = [];
    const a = slot.diff;
    // Merge of two ascending lists, keeping the words that really differ.
    let x = 0, y = 0;
    while (x < a.length || y < words.length) {
      let w: number;
      if (y >= words.length || (x < a.length && a[x] < words[y])) w = a[x++];
      else if (x >= a.length || words[y] < a[x]) w = words[y++];
      else {
        w = a[x++];
        y++;
      }
      if (bits[w] !== prev[w]) out.push(w);
    }
    slot.diff = out;
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
    const minCount = opts.minCount ?? 1;
    return this.#scan(minStart, duration, opts.fromIndex ?? 0, minCount, (i, j) => {
      const avail = j === i ? this.slots[i].free : this.#freeAcross(i, j, minCount);
      return avail === null || avail.length === 0 ? null : match(avail);
    });
  }

  /**
   * findFirst for the commonest request: `n` resources, each a block of its own (resource_id),
   * among `allowed` (a bitset from `mask`). The match is the window's first n free allowed
   * ids, read from the intersection's words without building the window's whole free set.
   */
  findFirstN(
    minStart: number,
    duration: number,
    n: number,
    allowed: Uint32Array,
  ): Fit<Itvs> | null {
    if (n <= 0) return null;
    return this.#scan(minStart, duration, 0, n, (i, j) => {
      const lo = this.#firstWord(this.slots[i]);
      const found = this.#firstIdsWordByWord(i, j, n, allowed, lo);
      if (found !== undefined) return found;
      if (!this.#intersect(i, j, n)) return null;
      const base = this.slots[i].bits;
      const acc = this.#acc, stamp = this.#stamp, gen = this.#gen;
      const out: number[] = [];
      let got = 0;
      for (let w = lo; w < base.length && got < n; w++) {
        const x = (stamp[w] === gen ? acc[w] : base[w]) & allowed[w];
        if (x !== 0) got += takeLowest(out, w, x, n - got);
      }
      return got === n ? out : null;
    });
  }

  /**
   * findFirst for a BlocksRequest (`/host=k/core=c` on single-range hosts and single cores)
   * among `allowed` (a bitset from `mask`): hosts are counted on the intersection's words, and
   * only the chosen ones' ids are built, never the window's whole free set.
   */
  findFirstBlocks(
    minStart: number,
    duration: number,
    req: BlocksRequest,
    allowed: Uint32Array,
  ): Fit<Itvs> | null {
    const { starts, ends, count, each } = req;
    return this.#scan(minStart, duration, 0, count * each, (i, j) => {
      if (!this.#enoughHostsSampled(req, allowed, i, j)) return null;
      if (!this.#intersect(i, j, count * each)) return null;
      const base = this.slots[i].bits;
      const acc = this.#acc, stamp = this.#stamp, gen = this.#gen;
      const last = base.length - 1;
      /** Free (throughout the window) and allowed ids of block [a, b] in word w. */
      const usable = (w: number, a: number, b: number) =>
        (stamp[w] === gen ? acc[w] : base[w]) & allowed[w] & rangeMask(w, a, b);
      const out: number[] = [];
      let taken = 0;
      for (let k = 0; k < starts.length && taken < count; k++) {
        const a = starts[k], b = ends[k];
        const wa = a >>> 5, wb = Math.min(b >>> 5, last);
        let n = 0;
        for (let w = wa; w <= wb && n < each; w++) n += pop32(usable(w, a, b));
        if (n < each) continue;
        let left = each;
        for (let w = wa; w <= wb && left > 0; w++) {
          const x = usable(w, a, b);
          if (x !== 0) left -= takeLowest(out, w, x, left);
        }
        taken++;
      }
      return taken === count ? out : null;
    });
  }

  /**
   * Whether `count` hosts keep `each` free allowed ids in the window's first, middle and last
   * slots together: a necessary condition, and cheap next to the window's whole intersection
   * (a few words per host, stopping at the count). A window with enough free ids in all, but
   * not on enough hosts (a fragmented cluster), is common, and ruled out here.
   */
  #enoughHostsSampled(req: BlocksRequest, allowed: Uint32Array, i: number, j: number): boolean {
    const { starts, ends, count, each } = req;
    const a0 = this.slots[i].bits, a1 = this.slots[(i + j) >> 1].bits, a2 = this.slots[j].bits;
    const last = a0.length - 1;
    let hosts = 0;
    // From the first host ending at or after slot i's first free id: none before has any.
    const first = lowerBound(ends, this.#firstWord(this.slots[i]) << 5);
    for (let k = first; k < starts.length; k++) {
      const a = starts[k], b = ends[k];
      const wb = Math.min(b >>> 5, last);
      let n = 0;
      for (let w = a >>> 5; w <= wb && n < each; w++) {
        const x = a0[w] & a1[w] & a2[w] & allowed[w];
        if (x !== 0) n += pop32(x & rangeMask(w, a, b));
      }
      if (n >= each && ++hosts >= count) return true;
    }
    return false;
  }

  /**
   * findFirstN's answer for window [i, j] read word by word: the words free in its first,
   * middle and last slots together, in order from `lo`, each ANDed through every slot of the
   * window, until `n` allowed ids are found. Exact (a word's AND is the intersection's word),
   * and a few words times the window's slots when the first candidates hold (the usual case),
   * where the whole intersection walks every difference of every slot. Null: fewer than n.
   * Undefined: more than WORD_BY_WORD candidates were needed, left to the whole intersection.
   */
  #firstIdsWordByWord(
    i: number,
    j: number,
    n: number,
    allowed: Uint32Array,
    lo: number,
  ): Itvs | null | undefined {
    const s = this.slots;
    const a0 = s[i].bits, a1 = s[(i + j) >> 1].bits, a2 = s[j].bits;
    const out: number[] = [];
    let got = 0, tried = 0;
    for (let w = lo; w < a0.length; w++) {
      let x = a0[w] & a1[w] & a2[w] & allowed[w];
      if (x === 0) continue;
      if (++tried > WORD_BY_WORD) return undefined;
      for (let k = i + 1; k < j && x !== 0; k++) x &= s[k].bits[w];
      if (x === 0) continue;
      got += takeLowest(out, w, x, n - got);
      if (got === n) return out;
    }
    return null;
  }

  /** The slot's first word with a free id (none below it); its bitset's length when none. */
  #firstWord(slot: Slot): number {
    const bits = slot.bits;
    let w = slot.lo;
    while (w < bits.length && bits[w] === 0) w++;
    slot.lo = w;
    return w;
  }

  /** `s` as a bitset of this slot set's width (for findFirstN), built once per set. */
  mask(s: Itvs): Uint32Array {
    let bits = this.#masks.get(s);
    if (bits === undefined) this.#masks.set(s, bits = fromItvs(s, this.#words));
    return bits;
  }

  /**
   * The window search: for each slot i from minStart's on, the window of `duration` seconds
   * starting there, through slots i..j, is handed to `evaluate` unless a slot of it has fewer
   * than `minCount` free resources. The first window it accepts is the answer.
   */
  #scan<T>(
    minStart: number,
    duration: number,
    fromIndex: number,
    minCount: number,
    evaluate: (i: number, j: number) => T | null,
  ): Fit<T> | null {
    const s = this.slots;
    let i = Math.max(fromIndex, this.indexAt(minStart));
    for (; i < s.length; i++) {
      if (s[i].n < minCount) continue;
      const start = Math.max(s[i].b, minStart);
      const end = start + duration - 1;
      if (end > MAX_TIME) return null;
      // The window's last slot; the free counts alone rule out many windows, before any AND.
      let j = i;
      let tooSmall = -1;
      while (s[j].e < end) {
        if (++j >= s.length) return null;
        if (s[j].n < minCount) {
          tooSmall = j;
          break;
        }
      }
      // Every window starting from here up to that slot runs through it: skip them all.
      if (tooSmall >= 0) {
        i = tooSmall;
        continue;
      }
      const value = evaluate(i, j);
      if (value !== null) return { start, index: i, value };
    }
    return null;
  }

  /** Resources free in every slot of [i, j], or null when fewer than `min` (#intersect). */
  #freeAcross(i: number, j: number, min: number): Itvs | null {
    if (!this.#intersect(i, j, min)) return null;
    const base = this.slots[i].bits;
    const acc = this.#acc, stamp = this.#stamp, gen = this.#gen;
    const out: number[] = [];
    for (let w = 0; w < base.length; w++) {
      const x = stamp[w] === gen ? acc[w] : base[w];
      if (x !== 0) pushWord(out, w, x);
    }
    return out;
  }

  /**
   * ANDs slots i..j; false when fewer than `min` resources (or none) are free throughout. From
   * slot i, each next slot changes the intersection only in the words where it differs from
   * the slot before it (Slot.diff). The result is an overlay: the words of #acc stamped with
   * #gen, slot i's bitset for the others. The count is kept as words change, so a window with
   * too few resources is dropped as soon as it has.
   */
  #intersect(i: number, j: number, min: number): boolean {
    const s = this.slots;
    const base = s[i].bits;
    let n = s[i].n;
    if (n < min || n === 0) return false;
    const acc = this.#acc;
    const stamp = this.#stamp;
    if (++this.#gen > 0xfffffff0) {
      stamp.fill(0);
      this.#gen = 1;
    }
    const gen = this.#gen;
    for (let k = i + 1; k <= j; k++) {
      const bits = s[k].bits;
      const diff = s[k].diff;
      for (let t = 0; t < diff.length; t++) {
        const w = diff[t];
        let cur: number;
        if (stamp[w] === gen) cur = acc[w];
        else {
          cur = base[w];
          stamp[w] = gen;
        }
        const lost = cur & ~bits[w];
        if (lost !== 0) {
          n -= pop32(lost);
          cur &= bits[w];
        }
        acc[w] = cur;
      }
      if (n < min || n === 0) return false;
    }
    return true;
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

/**
 * Candidate words findFirstN checks one by one before it intersects the whole window instead:
 * past this many, the window is crowded and the differences are the cheaper walk.
 */
const WORD_BY_WORD = 8;

/** The words (ascending, once each) holding the ids of `res`, up to `words`. */
function wordsOf(res: Itvs, words: number): number[] {
  const out: number[] = [];
  for (let x = 0; x < res.length; x += 2) {
    const lo = res[x] >>> 5;
    const hi = Math.min(res[x + 1] >>> 5, words - 1);
    for (let w = Math.max(lo, out.length > 0 ? out[out.length - 1] + 1 : 0); w <= hi; w++) {
      out.push(w);
    }
  }
  return out;
}

/** The bits of word `w` standing for ids `a` to `b` (inclusive). */
function rangeMask(w: number, a: number, b: number): number {
  const lo = Math.max(a - (w << 5), 0);
  const hi = Math.min(b - (w << 5), 31);
  if (lo > hi) return 0;
  return (hi === 31 ? -1 : (1 << (hi + 1)) - 1) & ~((1 << lo) - 1);
}

/** Appends the lowest `left` ids of word `w`'s bits `x` (all if fewer); returns how many. */
function takeLowest(out: number[], w: number, x: number, left: number): number {
  const c = pop32(x);
  pushWord(out, w, c > left ? lowestBits(x, left) : x);
  return Math.min(c, left);
}

/** The `k` lowest set bits of `x` (k below its count of set bits). */
function lowestBits(x: number, k: number): number {
  let out = 0;
  for (let t = 0; t < k; t++) {
    const low = x & -x;
    out |= low;
    x ^= low;
  }
  return out;
}
