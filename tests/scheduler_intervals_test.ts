import {
  contains,
  count,
  difference,
  equals,
  format,
  fromIds,
  fromRanges,
  intersect,
  intersectAtLeast,
  isSubset,
  type Itvs,
  overlaps,
  takeFirst,
  toIds,
  union,
} from "../modules/meta_sched/kamelot/intervals.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

Deno.test("intervals: normalisation merges overlapping and adjacent ranges", () => {
  assertEquals(fromIds([5, 1, 2, 3, 3, 9]), [1, 3, 5, 5, 9, 9]);
  assertEquals(fromRanges([[4, 6], [1, 2], [3, 3], [10, 12], [11, 11]]), [1, 6, 10, 12]);
  assertEquals(fromRanges([[3, 1]]), []);
  assertEquals(format(fromIds([1, 2, 3, 7])), "1-3,7");
});

Deno.test("intervals: union/intersect/difference/count/takeFirst on examples", () => {
  const a = fromRanges([[1, 5], [10, 15]]);
  const b = fromRanges([[4, 11], [20, 20]]);
  assertEquals(union(a, b), [1, 15, 20, 20]);
  assertEquals(intersect(a, b), [4, 5, 10, 11]);
  assertEquals(difference(a, b), [1, 3, 12, 15]);
  assertEquals(difference(b, a), [6, 9, 20, 20]);
  assertEquals(count(a), 11);
  assertEquals(takeFirst(a, 7), [1, 5, 10, 11]);
  assertEquals(takeFirst(a, 11), a);
  assertEquals(takeFirst(a, 12), null);
  assertEquals(takeFirst(a, 0), []);
  assertOk(isSubset([2, 3, 12, 12], a));
  assertOk(!isSubset([5, 10], a));
  assertOk(overlaps(a, b) && !overlaps([6, 9], a));
  assertOk(contains(a, 10) && !contains(a, 9) && !contains([], 1));
});

/** Deterministic PRNG so that a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomSet(r: () => number): Set<number> {
  const s = new Set<number>();
  const n = Math.floor(r() * 40);
  for (let i = 0; i < n; i++) s.add(Math.floor(r() * 60));
  return s;
}

function fromSet(s: Set<number>): Itvs {
  return fromIds(s);
}

function sorted(s: Iterable<number>): number[] {
  return [...s].sort((x, y) => x - y);
}

Deno.test("intervals: agree with plain sets over random inputs", () => {
  const r = rng(42);
  for (let round = 0; round < 2000; round++) {
    const x = randomSet(r), y = randomSet(r);
    const ix = fromSet(x), iy = fromSet(y);
    assertEquals(toIds(union(ix, iy)), sorted(new Set([...x, ...y])), `union #${round}`);
    assertEquals(
      toIds(intersect(ix, iy)),
      sorted([...x].filter((v) => y.has(v))),
      `inter #${round}`,
    );
    assertEquals(
      toIds(difference(ix, iy)),
      sorted([...x].filter((v) => !y.has(v))),
      `diff #${round}`,
    );
    assertEquals(count(ix), x.size);
    const inter = [...x].filter((v) => y.has(v));
    for (const min of [0, inter.length, inter.length + 1]) {
      const r = intersectAtLeast(ix, iy, min);
      assertEquals(r === null ? null : toIds(r), min > inter.length ? null : sorted(inter));
    }
    // The bisection path (one side much smaller than the other).
    const big = fromIds([...Array(200).keys()].filter((v) => v % 3 !== 0));
    const small = fromIds([...x].slice(0, 3));
    const expected = sorted([...x].slice(0, 3).filter((v) => v % 3 !== 0 && v < 200));
    assertEquals(toIds(intersectAtLeast(small, big, 0)!), expected);
    assertEquals(toIds(intersectAtLeast(big, small, 0)!), expected);
    assertEquals(isSubset(ix, iy), [...x].every((v) => y.has(v)), `subset #${round}`);
    assertEquals(overlaps(ix, iy), [...x].some((v) => y.has(v)), `overlaps #${round}`);
    const n = Math.floor(r() * 45);
    const t = takeFirst(ix, n);
    assertEquals(t === null ? null : toIds(t), n > x.size ? null : sorted(x).slice(0, n));
    for (const v of [0, 17, 33, 59]) assertEquals(contains(ix, v), x.has(v));
    // Results are normalised: re-normalising changes nothing.
    const u = union(ix, iy);
    assertOk(equals(u, fromIds(toIds(u))));
    const d = difference(ix, iy);
    assertOk(equals(d, fromIds(toIds(d))));
  }
});
