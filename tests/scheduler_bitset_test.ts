/**
 * The slot set's bitsets must be an exact stand-in for interval sets: conversions, removal, and
 * window searches checked against a plain interval-set reference on random data.
 */
import { clearItvs, fromItvs, partialWords, popcount, toItvs } from "../lib/scheduler/bitset.ts";
import {
  count,
  difference,
  fromRanges,
  intersect,
  type Itvs,
  range,
  takeFirst,
} from "../lib/scheduler/intervals.ts";
import { MAX_TIME, SlotSet } from "../lib/scheduler/slots.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomSet(r: () => number, max: number): Itvs {
  const pairs: [number, number][] = [];
  const n = Math.floor(r() * 12);
  for (let i = 0; i < n; i++) {
    const a = Math.floor(r() * max);
    pairs.push([a, Math.min(max - 1, a + Math.floor(r() * 70))]);
  }
  return fromRanges(pairs);
}

Deno.test("bitset: conversions and removal agree with interval sets", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const size = 1 + Math.floor(r() * 200);
    const words = Math.ceil(size / 32);
    const x = randomSet(r, size), y = randomSet(r, size);
    const bits = fromItvs(x, words);
    assertEquals(toItvs(bits), [...x], `seed ${seed}`);
    assertEquals(popcount(bits), count(x));
    const partial = partialWords(bits);
    const removed = clearItvs(bits, y, partial);
    assertEquals(removed, count(intersect(x, y)));
    assertEquals(toItvs(bits), [...difference(x, y)], `seed ${seed}: difference`);
    // Every non-full word is listed (once), whatever was cleared.
    const expected = [...Array(words).keys()].filter((w) => bits[w] !== 0xffffffff);
    assertEquals([...new Set(partial)].sort((a, b) => a - b), expected);
    assertEquals(partial.length, new Set(partial).size);
  }
  // Ids past the bitset's words are dropped, word edges are exact.
  assertEquals(toItvs(fromItvs(range(30, 100), 2)), [30, 63]);
  assertEquals(toItvs(fromItvs(fromRanges([[0, 31], [32, 32], [63, 63]]), 2)), [0, 32, 63, 63]);
});

/** The reference: a window's free set as the plain intersection of its slots' sets. */
function referenceFirst(
  slots: SlotSet,
  minStart: number,
  duration: number,
  n: number,
): { start: number; value: Itvs } | null {
  const s = slots.slots;
  for (let i = slots.indexAt(minStart); i < s.length; i++) {
    const start = Math.max(s[i].b, minStart);
    const end = start + duration - 1;
    if (end > MAX_TIME) return null;
    let avail = s[i].free;
    let j = i;
    let out = false;
    while (s[j].e < end) {
      if (++j >= s.length) {
        out = true;
        break;
      }
      avail = intersect(avail, s[j].free);
    }
    if (out) return null;
    const value = takeFirst(avail, n);
    if (value !== null && value.length > 0) return { start, value };
  }
  return null;
}

Deno.test("slots: window search over bitsets equals the interval-set reference", () => {
  for (let seed = 1; seed <= 120; seed++) {
    const r = rng(seed);
    const size = 1 + Math.floor(r() * 150);
    const universe = r() < 0.3 ? randomSet(r, size) : range(0, size - 1);
    const slots = new SlotSet(universe, 0);
    for (let k = 0; k < 25; k++) {
      const a = Math.floor(r() * 400);
      slots.occupy(a, a + Math.floor(r() * 150), randomSet(r, size + 40));
    }
    for (let q = 0; q < 40; q++) {
      const minStart = Math.floor(r() * 450);
      const duration = 1 + Math.floor(r() * 200);
      const n = 1 + Math.floor(r() * Math.max(1, size / 3));
      const want = referenceFirst(slots, minStart, duration, n);
      for (const minCount of [0, 1, n]) {
        const got = slots.findFirst(minStart, duration, (avail) => takeFirst(avail, n), {
          minCount,
        });
        assertEquals(
          got === null ? null : { start: got.start, value: [...got.value] },
          want === null ? null : { start: want.start, value: [...want.value] },
          `seed ${seed} query ${q} minCount ${minCount}`,
        );
      }
      const fixed = slots.freeOver(minStart, duration);
      const s = slots.slots;
      let ref: Itvs = s[slots.indexAt(minStart)].free;
      for (let k = slots.indexAt(minStart) + 1; k <= slots.indexAt(minStart + duration - 1); k++) {
        ref = intersect(ref, s[k].free);
      }
      assertEquals([...fixed], [...ref], `seed ${seed} freeOver ${q}`);
    }
    // Counts stay exact through splits and removals.
    for (const slot of slots.slots) assertOk(slot.n === count(slot.free), `seed ${seed}`);
  }
});
