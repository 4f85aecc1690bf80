import { assertEquals, assertRejects } from "./support/assert.ts";
import { GroupCommit } from "../modules/bipbip/group_commit.ts";

/** A handler whose batches finish when the test says so. */
function gatedHandler() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const handle = (items: number[]) => {
    batches.push(items);
    return new Promise<number>((resolve) => gates.push(() => resolve(items.length)));
  };
  return { batches, gates, handle };
}

Deno.test("group commit: alone, a submission goes at once", async () => {
  const g = new GroupCommit((items: number[]) => Promise.resolve(items.map((x) => x * 2)));
  assertEquals(await g.submit([1, 2]), [2, 4]);
  assertEquals(await g.submit([3]), [6]);
});

Deno.test("group commit: submissions made while a batch runs go together in the next", async () => {
  const h = gatedHandler();
  const g = new GroupCommit(h.handle);
  const first = g.submit([1]);
  const second = g.submit([2, 3]);
  const third = g.submit([4]);
  assertEquals(h.batches, [[1]]); // the others wait for the first batch
  h.gates[0]();
  assertEquals(await first, 1);
  assertEquals(h.batches, [[1], [2, 3, 4]]);
  h.gates[1]();
  // Each submitter gets the result of the batch it went in.
  assertEquals(await Promise.all([second, third]), [3, 3]);
  const fourth = g.submit([5]);
  assertEquals(h.batches.at(-1), [5]);
  h.gates[2]();
  assertEquals(await fourth, 1);
});

Deno.test("group commit: a failed batch rejects its submitters only, and the next one runs", async () => {
  let calls = 0;
  const g = new GroupCommit((items: string[]) => {
    calls++;
    if (items.includes("bad")) return Promise.reject(new Error("database away"));
    return Promise.resolve(items.join(","));
  });
  const failed = g.submit(["bad"]);
  const next = g.submit(["a"]);
  const alsoNext = g.submit(["b"]);
  await assertRejects(() => failed, Error, "database away");
  assertEquals(await next, "a,b");
  assertEquals(await alsoNext, "a,b");
  assertEquals(calls, 2);
});
