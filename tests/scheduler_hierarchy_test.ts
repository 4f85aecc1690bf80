import {
  ALL,
  BEST,
  buildLevel,
  type GroupRequest,
  type Hierarchy,
  type Level,
  matchGroup,
  matchGroups,
} from "../modules/meta_sched/kamelot/hierarchy.ts";
import {
  count,
  difference,
  fromIds,
  range,
  toIds,
} from "../modules/meta_sched/kamelot/intervals.ts";
import { assertEquals, assertOk } from "./support/assert.ts";
import { seededInts } from "./support/random.ts";

/** 4 hosts × 2 cpus × 2 cores; ids in host order (0..15). */
function cluster(order: "host" | "scattered" = "host"): Hierarchy {
  const ids = [...Array(16).keys()];
  const perm = order === "host" ? ids : ids.map((i) => (i % 4) * 4 + Math.floor(i / 4));
  const hostOf = (id: number) => `h${Math.floor(perm[id] / 4)}`;
  const cpuOf = (id: number) => Math.floor(perm[id] / 2);
  const levels: Level[] = [
    buildLevel("resource_id", ids.map((i) => perm[i] + 1)),
    buildLevel("network_address", ids.map(hostOf)),
    buildLevel("cpu", ids.map(cpuOf)),
    buildLevel("core", ids.map((i) => perm[i])),
  ];
  return new Map(levels.map((l) => [l.label, l]));
}

const all = range(0, 15);
const g = (levels: [string, number][], constraint = all): GroupRequest => ({
  levels: levels.map(([label, count]) => ({ label, count })),
  constraint,
});

for (const order of ["host", "scattered"] as const) {
  const hy = cluster(order);
  const hostIds = (h: number) =>
    [...Array(16).keys()].filter((id) => hy.get("network_address")!.blocks[h].includes(id));

  Deno.test(`hierarchy (${order} order): /network_address=2/core=3 takes 3 cores on each of 2 hosts`, () => {
    const r = matchGroup(hy, g([["network_address", 2], ["core", 3]]), all)!;
    assertEquals(count(r), 6);
    const blocks = hy.get("network_address")!.blocks;
    const perHost = blocks.map((b) => toIds(r).filter((id) => inBlock(b, id)).length);
    assertEquals(perHost.filter((n) => n > 0).length, 2);
    assertOk(perHost.every((n) => n === 0 || n === 3));
  });

  Deno.test(`hierarchy (${order} order): a host with too few free cores is passed over`, () => {
    const blocks = hy.get("network_address")!.blocks;
    // Host 0 has 2 free cores only.
    const free = difference(all, fromIds(toIds(blocks[0]).slice(0, 2)));
    const r = matchGroup(hy, g([["network_address", 1], ["core", 3]]), free)!;
    assertOk(!toIds(r).some((id) => inBlock(blocks[0], id)));
    assertEquals(matchGroup(hy, g([["network_address", 4], ["core", 3]]), free), null);
    void hostIds;
  });

  Deno.test(`hierarchy (${order} order): bottom-level blocks are taken only when wholly free`, () => {
    const blocks = hy.get("network_address")!.blocks;
    const free = difference(all, fromIds([toIds(blocks[1])[0]]));
    const r = matchGroup(hy, g([["network_address", 3]]), free)!;
    assertEquals(count(r), 12);
    assertOk(!toIds(r).some((id) => inBlock(blocks[1], id)));
    assertEquals(matchGroup(hy, g([["network_address", 4]]), free), null);
  });

  Deno.test(`hierarchy (${order} order): ALL and BEST`, () => {
    const blocks = hy.get("network_address")!.blocks;
    const hosts01 = fromIds([...toIds(blocks[0]), ...toIds(blocks[1])]);
    // ALL hosts within the constraint (hosts 0 and 1): both must be free.
    assertEquals(count(matchGroup(hy, g([["network_address", ALL]], hosts01), all)!), 8);
    const busy1 = difference(all, fromIds([toIds(blocks[1])[2]]));
    assertEquals(matchGroup(hy, g([["network_address", ALL]], hosts01), busy1), null);
    // BEST: what is free, at least one.
    assertEquals(count(matchGroup(hy, g([["network_address", BEST]], hosts01), busy1)!), 4);
    assertEquals(count(matchGroup(hy, g([["network_address", BEST], ["core", 2]]), busy1)!), 8);
    assertEquals(matchGroup(hy, g([["network_address", BEST]], hosts01), range(100, 101)), null);
    // ALL cores of ALL hosts of the constraint.
    assertEquals(
      count(matchGroup(hy, g([["network_address", ALL], ["core", ALL]], hosts01), all)!),
      8,
    );
  });

  Deno.test(`hierarchy (${order} order): several groups take disjoint resources`, () => {
    const r = matchGroups(hy, [g([["resource_id", 10]]), g([["resource_id", 6]])], all)!;
    assertEquals(count(r), 16);
    assertEquals(matchGroups(hy, [g([["resource_id", 10]]), g([["resource_id", 7]])], all), null);
  });
}

function inBlock(b: readonly number[], id: number): boolean {
  for (let i = 0; i < b.length; i += 2) if (b[i] <= id && id <= b[i + 1]) return true;
  return false;
}

Deno.test("hierarchy: a level's blocks, in one pass for runs as for values in any order", () => {
  /** The blocks by definition: each value's members as an interval set, by smallest member. */
  const reference = (values: unknown[]) => {
    const byValue = new Map<string, number[]>();
    values.forEach((v, id) => {
      const key = v === null || v === undefined ? "null" : `v${String(v)}`;
      byValue.set(key, [...(byValue.get(key) ?? []), id]);
    });
    return [...byValue.values()].map((ids) => fromIds(ids)).sort((a, b) => a[0] - b[0]);
  };
  const rand = seededInts(7);
  for (let round = 0; round < 200; round++) {
    // Runs of values (hosts in order), sometimes a value coming back, NULLs, numbers as strings.
    const values: unknown[] = [];
    for (let v = 0; values.length < 1 + rand(60); v++) {
      const value = rand(10) === 0 ? null : rand(4) === 0 ? String(rand(v + 1)) : v;
      for (let k = 1 + rand(5); k > 0; k--) values.push(value);
    }
    const level = buildLevel("x", values);
    const want = reference(values);
    assertEquals(level.blocks.map((b) => [...b]), want, `round ${round}`);
    const simple = want.every((b) => b.length === 2);
    assertEquals(level.starts && [...level.starts], simple ? want.map((b) => b[0]) : null);
    assertEquals(level.ends && [...level.ends], simple ? want.map((b) => b[1]) : null);
  }
});
