import { fromRanges, range } from "../modules/meta_sched/kamelot/intervals.ts";
import { MAX_TIME, SlotSet } from "../modules/meta_sched/kamelot/slots.ts";
import {
  blocksRequest,
  buildLevel,
  matchGroups,
  minResources,
} from "../modules/meta_sched/kamelot/hierarchy.ts";
import { takeFirst } from "../modules/meta_sched/kamelot/intervals.ts";
import { assertEquals, assertOk } from "./support/assert.ts";
import { seededInts } from "./support/random.ts";

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

Deno.test("slots: /host=k/core=c read from bitsets matches the general matcher, at random", () => {
  const rand = seededInts(12345);
  for (let round = 0; round < 60; round++) {
    // Hosts of 1 to 40 cores (words shared by hosts, hosts over several words), cores
    // numbered across the cluster; a constraint leaving some ids out.
    const hostOf: number[] = [];
    for (let h = 0; hostOf.length < 40 + rand(400); h++) {
      for (let c = 1 + rand(40); c > 0; c--) hostOf.push(h);
    }
    const ids = hostOf.length;
    const hy = new Map([
      ["host", buildLevel("host", hostOf)],
      ["core", buildLevel("core", hostOf.map((_, i) => i + 1))],
    ]);
    const allIds = range(0, ids - 1);
    const constraint = rand(3) === 0
      ? fromRanges(Array.from({ length: 5 }, () => {
        const a = rand(ids);
        return [a, Math.min(ids - 1, a + rand(ids / 2))] as [number, number];
      }))
      : allIds;
    const s = new SlotSet(allIds, 0);
    for (let j = 0; j < 30; j++) {
      const a = rand(ids);
      const start = rand(500);
      s.occupy(start, start + 1 + rand(300), range(a, Math.min(ids - 1, a + rand(60))));
    }
    for (let q = 0; q < 20; q++) {
      const groups = [{
        levels: [{ label: "host", count: 1 + rand(4) }, { label: "core", count: 1 + rand(12) }],
        constraint,
      }];
      const req = blocksRequest(hy, groups);
      assertOk(req !== null);
      const from = rand(400), duration = 1 + rand(200);
      const fast = s.findFirstBlocks(from, duration, req, s.mask(constraint));
      const general = s.findFirst(from, duration, (avail) => matchGroups(hy, groups, avail), {
        minCount: minResources(groups),
      });
      assertEquals(
        fast && [fast.start, fast.index, [...fast.value]],
        general && [general.start, general.index, [...general.value]],
        `round ${round}, request ${q}`,
      );
    }
  }
});

Deno.test("slots: a request that is not /host=k/core=c on single cores takes the general path", () => {
  const hostOf = [0, 0, 1, 1];
  const hy = new Map([
    ["host", buildLevel("host", hostOf)],
    ["core", buildLevel("core", [1, 2, 1, 2])], // core numbers repeat: blocks of 2 ids
    ["resource_id", buildLevel("resource_id", [1, 2, 3, 4])],
  ]);
  const g = (levels: { label: string; count: number }[]) => [{ levels, constraint: range(0, 3) }];
  assertEquals(
    blocksRequest(hy, g([{ label: "host", count: 1 }, { label: "core", count: 1 }])),
    null,
  );
  assertEquals(
    blocksRequest(hy, g([{ label: "host", count: -1 }, { label: "resource_id", count: 1 }])),
    null,
  );
  assertEquals(blocksRequest(hy, g([{ label: "resource_id", count: 2 }])), null);
  assertOk(blocksRequest(hy, g([{ label: "host", count: 2 }, { label: "resource_id", count: 2 }])));
});
