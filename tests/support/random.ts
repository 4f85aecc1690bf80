/**
 * A seeded pseudo-random source for randomised tests (a linear congruential generator): the
 * same seed gives the same cases, so a failure can be replayed.
 */
export function seededInts(seed: number): (n: number) => number {
  let s = seed >>> 0;
  /** An integer in [0, n). */
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}
