/**
 * The slot set's bitsets must be an exact stand-in for interval sets: conversions, removal, and
 * window searches checked against a plain interval-set reference on random data.
 */
import { clearItvs, fromItvs, popcount, toItvs } from "../modules/meta_sched/kamelot/bitset.ts";
import {
  count,
  difference,
  fromRanges,
  intersect,
  type Itvs,
  range,
  takeFirst,
} from "../modules/meta_sched/kamelot/intervals.ts";
import { MAX_TIME, SlotSet } from "../modules/meta_sched/kamelot/slots.ts";
import { buildLevel, matchGroups, singleCount } from "../modules/meta_sched/kamelot/hierarchy.ts";
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
    const removed = clearItvs(bits, y);
    assertEquals(removed, count(intersect(x, y)));
    assertEquals(toItvs(bits), [...difference(x, y)], `seed ${seed}: difference`);
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

/**
 * The invariant the window search relies on: a slot's words outside its `diff` list equal the
 * previous slot's (the list ascending, without duplicates).
 */
function assertDiffs(slots: SlotSet, what: string) {
  const s = slots.slots;
  for (let k = 1; k < s.length; k++) {
    const listed = new Set(s[k].diff);
    assertEquals(s[k].diff, [...listed].sort((a, b) => a - b), `${what}: slot ${k} list`);
    for (let w = 0; w < s[k].bits.length; w++) {
      if (!listed.has(w)) assertEquals(s[k].bits[w], s[k - 1].bits[w], `${what}: slot ${k} w ${w}`);
    }
  }
}

Deno.test("slots: window search over bitsets equals the interval-set reference", () => {
  for (let seed = 1; seed <= 120; seed++) {
    const r = rng(seed);
    // Up to 20 words: windows whose slots differ in a few words among many.
    const size = 1 + Math.floor(r() * (seed % 3 === 0 ? 640 : 150));
    const universe = r() < 0.3 ? randomSet(r, size) : range(0, size - 1);
    const slots = new SlotSet(universe, 0);
    for (let k = 0; k < 25; k++) {
      const a = Math.floor(r() * 400);
      slots.occupy(a, a + Math.floor(r() * 150), randomSet(r, size + 40));
      assertDiffs(slots, `seed ${seed} occupy ${k}`);
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

Deno.test("slots: the n-resources search equals the general search with the matcher", () => {
  for (let seed = 1; seed <= 80; seed++) {
    const r = rng(seed * 7919);
    const size = 1 + Math.floor(r() * (seed % 2 === 0 ? 500 : 120));
    const ids = Array.from({ length: size }, (_, i) => i);
    const hy = new Map([
      ["resource_id", buildLevel("resource_id", ids)],
      ["host", buildLevel("host", ids.map((i) => Math.floor(i / 8)))],
    ]);
    const slots = new SlotSet(range(0, size - 1), 0);
    for (let k = 0; k < 30; k++) {
      const a = Math.floor(r() * 400);
      slots.occupy(a, a + Math.floor(r() * 150), randomSet(r, size));
      if (k % 3 !== 0) continue;
      for (let q = 0; q < 10; q++) {
        const n = 1 + Math.floor(r() * Math.max(1, size / 4));
        const constraint = r() < 0.5 ? range(0, size - 1) : randomSet(r, size + 10);
        const groups = [{ levels: [{ label: "resource_id", count: n }], constraint }];
        assertEquals(singleCount(hy, groups), n);
        const minStart = Math.floor(r() * 450);
        const duration = 1 + Math.floor(r() * 200);
        const want = slots.findFirst(minStart, duration, (a) => matchGroups(hy, groups, a), {
          minCount: n,
        });
        const got = slots.findFirstN(minStart, duration, n, slots.mask(constraint));
        assertEquals(
          got === null ? null : { start: got.start, index: got.index, value: [...got.value] },
          want === null ? null : { start: want.start, index: want.index, value: [...want.value] },
          `seed ${seed} occupy ${k} query ${q}`,
        );
      }
    }
  }
  // Only single-resource blocks of one level qualify.
  const hy = new Map([["host", buildLevel("host", [0, 0, 1, 1])]]);
  assertEquals(singleCount(hy, [{ levels: [{ label: "host", count: 1 }], constraint: [0, 3] }]), 0);
});
