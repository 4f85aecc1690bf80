/**
 * Fairsharing karma (JOB_PRIORITY=FAIRSHARE): the targets' syntax, OAR's formula on known
 * numbers, the ordering, and the accounting sums on a real database (window and queue limits).
 */
import { Config } from "../lib/runtime/config.ts";
import {
  type Consumption,
  fairshareSettings,
  karmaOf,
  karmaText,
  loadConsumption,
  parseTargets,
  sortByKarma,
} from "../modules/meta_sched/kamelot/karma.ts";
import { assertEquals, assertOk } from "./support/assert.ts";
import { addAccounting } from "./support/sched_fixtures.ts";
import { createTestDb } from "./support/testdb.ts";

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

Deno.test("karma: targets in OAR's Perl-hash syntax, bad entries ignored", () => {
  const { targets, bad } = parseTargets("{first => 75, 'second'=>25 ,third => lots, }");
  assertEquals([...targets], [["first", 75], ["second", 25]]);
  assertEquals(bad, ["third => lots"]);
  assertEquals(parseTargets("{}").targets.size, 0);
  assertEquals(parseTargets("").targets.size, 0);
});

Deno.test("karma: settings fall back to their defaults when unset or unreadable", () => {
  const warnings: string[] = [];
  const s = fairshareSettings(
    new Config({
      SCHEDULER_FAIRSHARING_COEF_USER: "2.5",
      SCHEDULER_FAIRSHARING_COEF_USER_ASK: "much",
      SCHEDULER_FAIRSHARING_USER_TARGETS: "{alice => 60}",
    }),
    (m) => warnings.push(m),
  );
  assertEquals(s.windowSize, 2592000);
  assertEquals([s.coefProject, s.coefUser, s.coefUserAsk], [0, 2.5, 1]);
  assertEquals(s.userTargets.get("alice"), 60);
  assertEquals(s.projectTargets.size, 0);
  assertEquals(warnings.length, 1);
});

Deno.test("karma: OAR's formula, and jobs sorted lowest karma first (FIFO on ties)", () => {
  const c: Consumption = {
    totalAsked: 200,
    totalUsed: 100,
    projectUsed: new Map([["p1", 80], ["p2", 20]]),
    userUsed: new Map([["alice", 70], ["bob", 30]]),
    userAsked: new Map([["alice", 150], ["bob", 50]]),
  };
  const s = {
    windowSize: 1000,
    projectTargets: new Map([["p1", 50]]),
    userTargets: new Map([["bob", 40]]),
    coefProject: 2,
    coefUser: 1,
    coefUserAsk: 0.5,
  };
  // alice/p1: 2*(0.8-0.5) + 1*(0.7-0) + 0.5*(0.75-0) = 0.6 + 0.7 + 0.375
  assertOk(close(karmaOf({ user: "alice", project: "p1" }, c, s), 1.675));
  // bob/p2: 2*(0.2-0) + 1*(0.3-0.4) + 0.5*(0.25-0.4) = 0.4 - 0.1 - 0.075
  assertOk(close(karmaOf({ user: "bob", project: "p2" }, c, s), 0.225));
  // Unknown user and project: nothing consumed, no target.
  assertOk(close(karmaOf({ user: "carol", project: "p3" }, c, s), 0));
  const jobs = [
    { jobId: 1, user: "alice", project: "p1" },
    { jobId: 2, user: "bob", project: "p2" },
    { jobId: 3, user: "carol", project: "p3" },
    { jobId: 4, user: "dave", project: "p3" },
  ];
  const { ordered, karma } = sortByKarma(jobs, c, s);
  assertEquals(ordered.map((j) => j.jobId), [3, 4, 2, 1]);
  assertEquals(karmaText(karma.get(2)!), "Karma=0.225");
});

Deno.test("karma: accounting sums keep to the window and the queues", async () => {
  await using db = await createTestDb();
  const now = 100_000;
  const rows: Parameters<typeof addAccounting>[1][] = [
    { start: 90_000, stop: 95_000, user: "alice", project: "p1", type: "USED", consumption: 30 },
    { start: 90_000, stop: 95_000, user: "alice", project: "p1", type: "ASKED", consumption: 60 },
    { start: 95_000, stop: 99_000, user: "bob", project: "p2", type: "USED", consumption: 10 },
    { start: 95_000, stop: 99_000, user: "bob", project: "p2", type: "ASKED", consumption: 40 },
    { start: 95_000, stop: 99_000, user: "bob", project: "p1", type: "USED", consumption: 5 },
    // Before the window, after now, and another queue: all left out.
    { start: 10_000, stop: 20_000, user: "alice", type: "USED", consumption: 1000 },
    { start: 99_000, stop: 101_000, user: "alice", type: "USED", consumption: 1000 },
    { start: 90_000, stop: 95_000, user: "bob", queue: "other", type: "USED", consumption: 1000 },
  ];
  for (const r of rows) await addAccounting(db.sql, r);
  const c = await loadConsumption(db.sql, ["default"], now, 20_000);
  assertEquals([c.totalUsed, c.totalAsked], [45, 100]);
  assertEquals([...c.projectUsed].sort(), [["p1", 35], ["p2", 10]]);
  assertEquals([...c.userUsed].sort(), [["alice", 30], ["bob", 15]]);
  assertEquals([...c.userAsked].sort(), [["alice", 60], ["bob", 40]]);
  // An empty window: totals of 1, every karma 0 minus targets.
  const empty = await loadConsumption(db.sql, ["nothing"], now, 20_000);
  assertEquals([empty.totalUsed, empty.totalAsked, empty.userUsed.size], [1, 1, 0]);
});
