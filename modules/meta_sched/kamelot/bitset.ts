/**
 * Fixed-size bitsets of resource ids (`Uint32Array`, bit `id & 31` of word `id >> 5`): the slot
 * set's representation of free resources. First-fit placement fragments the free cores of a
 * busy cluster into hundreds of ranges per slot, and a window spans dozens of slots: ANDing 313
 * words (10,000 cores) per slot costs far less than merging interval lists of that size, and
 * does not get worse as fragmentation grows. Conversions to and from interval sets (`Itvs`)
 * happen only at the edges (a candidate window handed to the matcher, a placement reserved).
 */
import type { Itvs } from "./intervals.ts";

/** Number of 32-bit words holding ids 0..size-1. */
export function wordsFor(size: number): number {
  return (size + 31) >>> 5;
}

/** Number of set bits of a 32-bit word. */
export function pop32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Index of the lowest set bit (32 for 0). */
function ctz(x: number): number {
  return x === 0 ? 32 : 31 - Math.clz32(x & -x);
}

/** Set bits of words [lo, hi] (inclusive). */
export function popcount(bits: Uint32Array, lo = 0, hi = bits.length - 1): number {
  let n = 0;
  for (let w = lo; w <= hi; w++) if (bits[w] !== 0) n += pop32(bits[w]);
  return n;
}

/** Mask of bits a..b (0 <= a <= b <= 31) of one word. */
function mask(a: number, b: number): number {
  // -1 << 32 would be -1: the full-width case is handled apart.
  const high = b === 31 ? -1 : (1 << (b + 1)) - 1;
  return high & (-1 << a);
}

/** The bitset of `s`; ids at or past `words * 32` are dropped. */
export function fromItvs(s: Itvs, words: number): Uint32Array {
  const bits = new Uint32Array(words);
  const max = words * 32 - 1;
  for (let i = 0; i < s.length; i += 2) {
    const a = s[i], b = Math.min(s[i + 1], max);
    if (a > b) continue;
    const wa = a >>> 5, wb = b >>> 5;
    if (wa === wb) {
      bits[wa] |= mask(a & 31, b & 31);
      continue;
    }
    bits[wa] |= mask(a & 31, 31);
    for (let w = wa + 1; w < wb; w++) bits[w] = 0xffffffff;
    bits[wb] |= mask(0, b & 31);
  }
  return bits;
}

/** Clears the ids of `s` in `bits`; returns how many of them were set. */
export function clearItvs(bits: Uint32Array, s: Itvs): number {
  const max = bits.length * 32 - 1;
  let removed = 0;
  for (let i = 0; i < s.length; i += 2) {
    const a = s[i], b = Math.min(s[i + 1], max);
    if (a > b) continue;
    const wa = a >>> 5, wb = b >>> 5;
    for (let w = wa; w <= wb; w++) {
      const m = mask(w === wa ? a & 31 : 0, w === wb ? b & 31 : 31);
      const hit = bits[w] & m;
      if (hit !== 0) {
        removed += pop32(hit);
        bits[w] &= ~m;
      }
    }
  }
  return removed;
}

/** The interval set of the bits set in words [lo, hi]. */
export function toItvs(bits: Uint32Array, lo = 0, hi = bits.length - 1): number[] {
  const out: number[] = [];
  for (let w = lo; w <= hi; w++) if (bits[w] !== 0) pushWord(out, w, bits[w]);
  return out;
}

/**
 * Appends the ids of word `w` (value x, not zero) to an interval set under construction whose
 * ids are all below w's.
 */
export function pushWord(out: number[], w: number, x: number): void {
  x |= 0;
  const base = w << 5;
  if (x === -1) {
    const n = out.length;
    if (n > 0 && out[n - 1] === base - 1) out[n - 1] = base + 31;
    else out.push(base, base + 31);
    return;
  }
  while (x !== 0) {
    const a = ctz(x);
    // Length of the run of ones starting at bit a (zeros shifted in above end it).
    const len = ctz(~(x >>> a));
    const s = base + a, e = base + a + len - 1;
    const n = out.length;
    if (n > 0 && out[n - 1] === s - 1) out[n - 1] = e;
    else out.push(s, e);
    x = a + len >= 32 ? 0 : x & (-1 << (a + len));
  }
}
