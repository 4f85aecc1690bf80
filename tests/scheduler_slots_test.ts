import { fromRanges, range } from "../lib/scheduler/intervals.ts";
import { MAX_TIME, SlotSet } from "../lib/scheduler/slots.ts";
import { takeFirst } from "../lib/scheduler/intervals.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

const take = (n: number) => (avail: readonly number[]) => takeFirst(avail, n);

Deno.test("slots: occupy splits at both boundaries, inclusive ends", () => {
  const s = new SlotSet(range(0, 9), 100);
  s.occupy(110, 119, range(0, 4));
  assertEquals(s.slots.map((x) => [x.b, x.e, [...x.free]]), [
    [100, 109, [0, 9]],
    [110, 119, [5, 9]],
    [120, MAX_TIME, [0, 9]],
  ]);
  // A second job over the same window does not split again.
  s.occupy(110, 119, range(5, 5));
  assertEquals(s.slots.length, 3);
  assertEquals([...s.slots[1].free], [6, 9]);
});

Deno.test("slots: earliest window of a duration where the request fits", () => {
  const s = new SlotSet(range(0, 4), 1000);
  s.occupy(1000, 1099, range(0, 3)); // 4 of 5 busy for 100 s
  // 1 resource: fits now.
  assertEquals(s.findFirst(1000, 50, take(1))?.start, 1000);
  // 2 resources: only once the first job ends, at 1100 exactly (not 1099, not 1101).
  assertEquals(s.findFirst(1000, 50, take(2))?.start, 1100);
  // A hole of 100 s between two jobs: a 100 s job fits, a 101 s one does not.
  s.occupy(1200, 1299, range(0, 4));
  assertEquals(s.findFirst(1000, 100, take(5))?.start, 1100);
  assertEquals(s.findFirst(1000, 101, take(5))?.start, 1300);
  // minStart inside a slot.
  assertEquals(s.findFirst(1150, 20, take(5))?.start, 1150);
  // Never fits.
  assertEquals(s.findFirst(1000, 10, take(6)), null);
  assertEquals(s.findFirst(1000, MAX_TIME, take(1)), null);
});

Deno.test("slots: freeOver a fixed window", () => {
  const s = new SlotSet(fromRanges([[0, 9]]), 0);
  s.occupy(10, 19, range(0, 2));
  s.occupy(15, 30, range(8, 9));
  assertEquals([...s.freeOver(0, 10)], [0, 9]);
  assertEquals([...s.freeOver(5, 10)], [3, 9]);
  assertEquals([...s.freeOver(5, 11)], [3, 7]);
  assertEquals([...s.freeOver(12, 5)], [3, 7]);
  assertOk(s.freeOver(-5, 3).length === 0);
});
