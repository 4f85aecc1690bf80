/**
 * Scheduling quotas (modules/meta_sched/kamelot/quotas.ts): the file's rules, their matching and counting,
 * OAR 3's own scenarios (tests/kao/test_quotas.py) on Kamelot in memory, a property test over
 * random workloads (docs/differences.md #95/#100: the search ends, the counters stay within the
 * limits), and meta-scheduler rounds on a real database (quotas_load.ts, round.ts).
 */
import { Config, readConfigFile } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import {
  buildLevel,
  type GroupRequest,
  type Hierarchy,
} from "../modules/meta_sched/kamelot/hierarchy.ts";
import {
  count,
  type Itvs,
  overlaps,
  range,
  takeFirst,
} from "../modules/meta_sched/kamelot/intervals.ts";
import {
  type Placement,
  type SchedJob,
  scheduleJobs,
} from "../modules/meta_sched/kamelot/kamelot.ts";
import {
  parseQuotasFile,
  type QuotaJob,
  type QuotaRule,
  Quotas,
  Timeline,
  UNLIMITED,
} from "../modules/meta_sched/kamelot/quotas.ts";
import type { RoundReport } from "../modules/meta_sched/round.ts";
import {
  localDate,
  periodicalIntervals,
  type QuotaCalendar,
} from "../modules/meta_sched/kamelot/quotas_calendar.ts";
import { SlotSet } from "../modules/meta_sched/kamelot/slots.ts";
import { assertEquals, assertMatch, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  addCluster,
  makeRunning,
  plannedStart,
  referenceQueues,
  roundRunner,
  submitJob,
} from "./support/sched_fixtures.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { entryArgs } from "./support/exec_fixtures.ts";

// --- the file ---------------------------------------------------------------------------------

function parsed(text: string, all = 100) {
  const p = parseQuotasFile(text, all);
  if (typeof p === "string") throw new Error(p);
  return p;
}

function rule(key: string, resources: number, jobs = UNLIMITED, resourceSeconds = UNLIMITED) {
  const [queue, project, jobType, user] = key.split(",");
  return {
    key,
    queue,
    project,
    jobType,
    user,
    limits: { resources, jobs, resourceSeconds },
  } satisfies QuotaRule;
}

Deno.test("quotas file: limits as numbers, numeric strings, ALL and k*ALL (OAR 3's test)", () => {
  const p = parsed(
    JSON.stringify({
      quotas: {
        "*,*,*,john": [100, "ALL", "0.5*ALL"],
        "*,projA,*,*": ["34.5", "ALL", "2*ALL"],
      },
    }),
    100,
  );
  const by = new Map(p.rules.map((r) => [r.key, r]));
  assertEquals(by.get("*,*,*,john")!.limits, {
    resources: 100,
    jobs: 100,
    resourceSeconds: 180000,
  });
  assertEquals(by.get("*,projA,*,*")!.limits, {
    resources: 34,
    jobs: 100,
    resourceSeconds: 720000,
  });
  const j = by.get("*,*,*,john")!;
  assertEquals([j.queue, j.project, j.jobType, j.user], ["*", "*", "*", "john"]);
});

Deno.test("quotas file: one number means [n, -1, -1]; negative is unlimited; job_types kept", () => {
  const p = parsed(
    `{"quotas": {"*,*,*,/": 8, "default,*,yop,*": [-1, -5, 0.5]}, "job_types": ["yop"],
      "comment": "ignored"}`,
  );
  assertEquals(p.rules[0].limits, { resources: 8, jobs: -1, resourceSeconds: -1 });
  assertEquals(p.rules[1].limits, { resources: -1, jobs: -1, resourceSeconds: 1800 });
  assertEquals(p.warnings, ['unknown entry "comment" ignored']);
  assertEquals(parsed("{}").rules, []);
});

Deno.test("quotas file: malformed files say what is wrong", () => {
  const bad: [string, string][] = [
    ["{", "not valid JSON"],
    ["[1]", "JSON object"],
    [`{"quotas": [1]}`, `"quotas" must be an object`],
    [`{"quotas": {"*,*,*": [1,-1,-1]}}`, `rule "*,*,*"`],
    [`{"quotas": {"*,,*,*": [1,-1,-1]}}`, "queue,project,job_type,user"],
    [`{"quotas": {"*,*,/,*": [1,-1,-1]}}`, `"/" cannot be used for the job type`],
    [`{"quotas": {"*,*,*,*": ["lots",-1,-1]}}`, `max_resources "lots"`],
    [`{"quotas": {"*,*,*,*": [1,-1,"2*SOME"]}}`, "max_resource_hours"],
    [`{"quotas": {"*,*,*,*": [1,-1,-1,4]}}`, "expected [max_resources"],
    [`{"quotas": {"*,*,*,*": null}}`, "max_resources null"],
    [`{"job_types": "yop"}`, `"job_types" must be a list`],
  ];
  for (const [text, why] of bad) {
    const p = parseQuotasFile(text, 10);
    assertOk(typeof p === "string", `accepted: ${text}`);
    assertStringIncludes(p as string, why);
  }
});

// --- matching and counting --------------------------------------------------------------------

const J = (user: string, extra: Partial<QuotaJob> = {}): QuotaJob => ({
  queue: "default",
  project: "p",
  user,
  types: [],
  ...extra,
});

Deno.test("quotas: a value applies to its jobs only; '*' and '/' to every job", () => {
  const names = (types: string[]) => new Set(types.map((t) => t.split("=")[0]));
  const alice = J("alice", { types: ["yop=3", "besteffort"] });
  const bob = J("bob", { queue: "q2", project: "x" });
  assertOk(Quotas.applies(rule("*,*,*,alice", 1), alice, names(alice.types as string[])));
  assertOk(!Quotas.applies(rule("*,*,*,alice", 1), bob, names([])));
  assertOk(Quotas.applies(rule("/,/,*,/", 1), bob, names([])));
  assertOk(Quotas.applies(rule("q2,x,*,*", 1), bob, names([])));
  assertOk(!Quotas.applies(rule("default,*,*,*", 1), bob, names([])));
  // A type rule: the jobs having that type (with or without a value).
  assertOk(Quotas.applies(rule("*,*,yop,*", 1), alice, names(alice.types as string[])));
  assertOk(!Quotas.applies(rule("*,*,yop,*", 1), bob, names([])));
});

Deno.test("quotas: '*' counts users together, '/' each on their own (OAR 3 mixed them, #100)", () => {
  const res = range(0, 99);
  // Per user: alice's 4 resources do not hold bob back.
  const per = new Quotas([rule("*,*,*,/", 4)], res);
  per.add(J("alice"), 0, 99, 4, 100);
  assertEquals(per.earliest(J("bob"), 4, 100, 0, 100), { start: 0 });
  assertEquals(per.earliest(J("alice"), 1, 100, 0, 100), { start: 100 });
  // All users together: they do.
  const all = new Quotas([rule("*,*,*,*", 4)], res);
  all.add(J("alice"), 0, 99, 4, 100);
  assertEquals(all.earliest(J("bob"), 1, 100, 0, 100), { start: 100 });
  // A rule naming a user counts that user only.
  const one = new Quotas([rule("*,*,*,alice", 4)], res);
  one.add(J("bob"), 0, 99, 50, 100);
  assertEquals(one.earliest(J("alice"), 4, 100, 0, 100), { start: 0 });
  assertEquals(one.earliest(J("bob"), 50, 100, 0, 100), { start: 0 });
});

Deno.test("quotas: only default resources count; every applying rule must hold", () => {
  const q = new Quotas([rule("*,*,*,/", 10), rule("*,p,*,*", UNLIMITED, 1)], range(0, 3));
  assertEquals(q.nbResources(range(2, 9)), 2);
  q.add(J("alice"), 10, 19, 2, 10);
  // The job count of project p holds bob (of p) back until alice's job ends, at 20.
  assertEquals(q.earliest(J("bob"), 1, 5, 0, 5), { start: 0 });
  assertEquals(q.earliest(J("bob"), 1, 5, 8, 5), { start: 20 });
  assertEquals(q.earliest(J("bob", { project: "other" }), 1, 5, 8, 5), { start: 8 });
  assertStringIncludes(q.violation(J("bob"), 1, 5, 8, 5)!, "quota *,p,*,*: 2 running jobs");
  assertEquals(q.violation(J("bob"), 1, 5, 20, 5), null);
});

Deno.test("quotas: resource-hours are those of the jobs running at a time (#100)", () => {
  // 1 resource-hour at a time: two half-hour jobs of one resource fit side by side, a third
  // one overlapping both does not; one job alone over the limit never fits.
  const q = new Quotas([rule("*,*,*,*", UNLIMITED, UNLIMITED, 3600)], range(0, 9));
  q.add(J("a"), 0, 1799, 1, 1800);
  assertEquals(q.earliest(J("b"), 1, 1800, 0, 1800), { start: 0 });
  q.add(J("b"), 0, 1799, 1, 1800);
  assertEquals(q.earliest(J("c"), 1, 1800, 0, 1800), { start: 1800 });
  // Spanning many small jobs in a row counts each once: a window over 10 consecutive
  // half-hour jobs is within the limit (OAR 3 summed them per slot, #100).
  const chain = new Quotas([rule("*,*,*,*", UNLIMITED, UNLIMITED, 3600)], range(0, 9));
  for (let k = 0; k < 10; k++) chain.add(J("a"), k * 100, k * 100 + 99, 1, 1800);
  assertEquals(chain.earliest(J("b"), 1, 1800, 0, 1000), { start: 0 });
  const v = q.earliest(J("c"), 2, 3600, 0, 3600);
  assertOk("never" in v);
  assertMatch(v.never, /at most 1 resource-hours at a time, the job needs 2/);
});

Deno.test("quotas: a job over a limit on its own never fits, with the reason", () => {
  const q = new Quotas([rule("*,*,*,alice", 2), rule("*,*,*,bob", UNLIMITED, 0)], range(0, 9));
  const a = q.earliest(J("alice"), 3, 10, 0, 10);
  assertEquals(a, { never: "quota *,*,*,alice: at most 2 resources at a time, the job needs 3" });
  assertEquals(q.earliest(J("bob"), 1, 10, 0, 10), {
    never: "quota *,*,*,bob: no running job allowed",
  });
});

Deno.test("quotas timeline: counters over time, maxima over a window, earliest fit", () => {
  const t = new Timeline();
  t.add(10, 20, { resources: 2, resourceSeconds: 20 });
  t.add(15, 30, { resources: 3, resourceSeconds: 45 });
  assertEquals(t.t, [10, 15, 20, 30]);
  assertEquals(t.resources, [2, 5, 3, 0]);
  assertEquals(t.jobs, [1, 2, 1, 0]);
  assertEquals(t.maxOver(0, 10), { resources: 0, jobs: 0, resourceSeconds: 0 });
  assertEquals(t.maxOver(0, 11), { resources: 2, jobs: 1, resourceSeconds: 20 });
  assertEquals(t.maxOver(20, 100), { resources: 3, jobs: 1, resourceSeconds: 45 });
  assertEquals(t.maxOver(30, 100), { resources: 0, jobs: 0, resourceSeconds: 0 });
  const lim = (resources: number, jobs = UNLIMITED) => ({
    resources,
    jobs,
    resourceSeconds: UNLIMITED,
  });
  const need = { resources: 1, resourceSeconds: 0 };
  assertEquals(t.earliest(0, 10, need, lim(5)), 0); // [0, 10) ends where the first job starts
  assertEquals(t.earliest(0, 11, need, lim(5)), 0); // 3 at most over [0, 11)
  assertEquals(t.earliest(0, 16, need, lim(5)), 20); // 6 over [15, 20)
  assertEquals(t.earliest(0, 11, need, lim(3)), 0); // 3 at 10, the window's last second
  assertEquals(t.earliest(0, 16, need, lim(3)), 30); // 6 over [15, 20), then 4 until 30
  assertEquals(t.earliest(0, 11, need, lim(2)), 30); // 3, 6, then 4
  assertEquals(t.earliest(0, 5, need, lim(5, 1)), 0);
  assertEquals(t.earliest(12, 5, need, lim(5, 1)), 30);
  assertEquals(t.earliest(31, 5, need, lim(0)), 31);
});

// --- temporal quotas: the calendar -------------------------------------------------------------

const H = 3600, D = 86400;

Deno.test("quotas calendar: periodical entries to week intervals (Monday 00:00 = 0)", () => {
  assertEquals(periodicalIntervals("08:00-19:00 mon-fri * *"), [
    [8 * H, 19 * H],
    [D + 8 * H, D + 19 * H],
    [2 * D + 8 * H, 2 * D + 19 * H],
    [3 * D + 8 * H, 3 * D + 19 * H],
    [4 * D + 8 * H, 4 * D + 19 * H],
  ]);
  assertEquals(periodicalIntervals("* sat-sun * *"), [[5 * D, 7 * D]]);
  assertEquals(periodicalIntervals("* sun-mon * *"), [[6 * D, 7 * D], [0, D]]);
  assertEquals(periodicalIntervals("19:00-00:00 mon,thu * *"), [
    [19 * H, D],
    [3 * D + 19 * H, 4 * D],
  ]);
  assertEquals(periodicalIntervals("22:00-06:00 fri * *"), [[4 * D + 22 * H, 5 * D + 6 * H]]);
  assertEquals(periodicalIntervals("22:00-06:00 sun * *"), [[6 * D + 22 * H, 7 * D], [0, 6 * H]]);
  assertEquals(periodicalIntervals("* fri-mon * *"), [[4 * D, 7 * D], [0, D]]);
  assertEquals(periodicalIntervals("00:00-01:30:30 * * *").length, 7);
  for (
    const [spec, why] of [
      ["* * 1 *", "month days and months are not supported"],
      ["8-19 mon * *", "bad hours"],
      ["08:00-08:00 mon * *", "empty hours"],
      ["25:00-26:00 mon * *", "bad hours"],
      ["* xyz * *", "bad day"],
      ["* mon-xyz * *", "bad days"],
      ["* mon *", "expected"],
    ]
  ) {
    const r = periodicalIntervals(spec);
    assertOk(typeof r === "string", spec);
    assertStringIncludes(r as string, why);
  }
});

const TEMPORAL = {
  quotas: { "*,*,*,john": [1, -1, -1] },
  periodical: [
    ["08:00-19:00 mon-fri * *", "workday", "workdays"],
    ["* sat-sun * *", "weekend", "weekend"],
  ],
  oneshot: [["2024-06-05 12:00", "2024-06-06 12:00", "holiday", "a day off"]],
  workday: { "*,*,*,john": [10, -1, -1] },
  weekend: { "*,*,*,john": [20, -1, -1] },
  holiday: { "*,*,*,john": [30, -1, -1] },
};

Deno.test("quotas calendar: the rules in force at each instant (local time), and until when", () => {
  const p = parsed(JSON.stringify(TEMPORAL));
  assertEquals(p.warnings, []);
  assertEquals(p.sets.length, 4);
  const at = (date: string) => {
    const a = p.calendar!.at(localDate(date)!);
    return [p.sets[a.set][0].limits.resources, a.until];
  };
  const t = (date: string) => localDate(date)!;
  // 2024-06-03 is a Monday.
  assertEquals(at("2024-06-03 10:00"), [10, t("2024-06-03 19:00")]);
  assertEquals(at("2024-06-03 08:00"), [10, t("2024-06-03 19:00")]);
  assertEquals(at("2024-06-03 07:59:59"), [1, t("2024-06-03 08:00")]);
  assertEquals(at("2024-06-03 20:00"), [1, t("2024-06-04 08:00")]);
  // The oneshot overrides the periodicals, and cuts them short.
  assertEquals(at("2024-06-05 10:00"), [10, t("2024-06-05 12:00")]);
  assertEquals(at("2024-06-05 13:00"), [30, t("2024-06-06 12:00")]);
  assertEquals(at("2024-06-06 12:00"), [10, t("2024-06-06 19:00")]);
  assertEquals(at("2024-06-08 10:00"), [20, t("2024-06-10 00:00")]);
  assertEquals(at("2024-06-09 23:59"), [20, t("2024-06-10 00:00")]);
  assertEquals(at("2024-06-10 00:00"), [1, t("2024-06-10 08:00")]);
  // Weekends when clocks change (Europe, America): wall-clock boundaries all the same.
  for (const [sat, monday] of [["2024-03-30", "2024-04-01"], ["2024-10-26", "2024-10-28"]]) {
    assertEquals(at(`${sat} 12:00`), [20, t(`${monday} 00:00`)]);
    assertEquals(at(`${monday} 00:00`), [1, t(`${monday} 08:00`)]);
  }
  assertEquals(at("2024-03-09 12:00"), [20, t("2024-03-11 00:00")]);
  // A "default" entry names the rules of the hours no entry covers.
  const d = parsed(JSON.stringify({
    ...TEMPORAL,
    periodical: [...TEMPORAL.periodical, ["default", "night"]],
    night: { "*,*,*,john": [5, -1, -1] },
  }));
  const n = d.calendar!.at(t("2024-06-03 20:00"));
  assertEquals([d.sets[n.set][0].limits.resources, n.until], [5, t("2024-06-04 08:00")]);
});

Deno.test("quotas calendar: malformed temporal entries say what is wrong", () => {
  const bad: [unknown, string][] = [
    [{ ...TEMPORAL, periodical: [["* mon * *", "nosuch"]] }, `no rules named "nosuch"`],
    [{ ...TEMPORAL, periodical: [["* mon * *", "quotas_x"]], quotas_x: [1] }, `"quotas_x":`],
    [
      {
        ...TEMPORAL,
        periodical: [["* mon-tue * *", "workday"], ["12:00-13:00 tue * *", "weekend"]],
      },
      "overlap",
    ],
    [{ ...TEMPORAL, periodical: [["* * 1 *", "workday"]] }, "month days"],
    [{ ...TEMPORAL, periodical: "* * * *" }, `"periodical" must be a list`],
    [{ ...TEMPORAL, periodical: [["* mon * *"]] }, "periodical entry"],
    [{ ...TEMPORAL, oneshot: [["2024-02-30 10:00", "2024-03-02 10:00", "holiday"]] }, "dates"],
    [{ ...TEMPORAL, oneshot: [["2024-03-02 10:00", "2024-03-01 10:00", "holiday"]] }, "ends"],
    [
      {
        ...TEMPORAL,
        oneshot: [
          ["2024-03-01 10:00", "2024-03-03 10:00", "holiday"],
          ["2024-03-02 10:00", "2024-03-04 10:00", "holiday"],
        ],
      },
      "overlap",
    ],
    [{ ...TEMPORAL, oneshot: [["2024-03-01 10:00", "2024-03-02 10:00", "quotas_y"]] }, "quotas_y"],
  ];
  for (const [json, why] of bad) {
    const p = parseQuotasFile(JSON.stringify(json), 10);
    assertOk(typeof p === "string", `accepted: ${JSON.stringify(json)}`);
    assertStringIncludes(p as string, why);
  }
  // Rule sets nobody names are reported, not used.
  const p = parsed(JSON.stringify({ ...TEMPORAL, spare: { "*,*,*,*": [1, -1, -1] } }));
  assertEquals(p.warnings, ['unknown entry "spare" ignored']);
});

// --- Kamelot with quotas: OAR 3's scenarios (tests/kao/test_quotas.py) ----------------------

/** 32 resources, 4 nodes of 8 (OAR 3's test platform). */
function nodes32(): Hierarchy {
  const ids = [...Array(32).keys()];
  return new Map([
    ["resource_id", buildLevel("resource_id", ids)],
    ["node", buildLevel("node", ids.map((i) => Math.floor(i / 8)))],
  ]);
}

function nodeJob(
  jobId: number,
  n: number,
  walltime: number,
  quota: QuotaJob,
  extra: Partial<SchedJob> = {},
): SchedJob {
  const groups: GroupRequest[] = [{
    levels: [{ label: "node", count: n }],
    constraint: range(0, 31),
  }];
  return {
    jobId,
    minStart: 0,
    moldables: [{ moldableId: jobId, walltime, groups, cacheKey: `node${n}/${walltime}` }],
    quota,
    ...extra,
  };
}

/** A job already in the Gantt: its resources taken and counted. */
function inGantt(
  slots: SlotSet,
  q: Quotas,
  job: QuotaJob,
  start: number,
  walltime: number,
  res: Itvs,
) {
  slots.occupy(start, start + walltime - 1, res);
  q.add(job, start, start + walltime - 1, q.nbResources(res), walltime);
}

Deno.test("kamelot quotas (OAR 3): over a per-user limit on its own, a job is skipped", () => {
  const slots = new SlotSet(range(0, 31), 0, 100);
  const one = new Quotas([rule("*,*,*,/", 1)], range(0, 31));
  const r = scheduleJobs(slots, nodes32(), [nodeJob(1, 2, 60, J("toto"))], { quotas: one });
  assertEquals(r.placed, []);
  assertStringIncludes(r.skipped.get(1)!, "at most 1 resources at a time, the job needs 16");
  const sixteen = new Quotas([rule("*,*,*,/", 16)], range(0, 31));
  const r2 = scheduleJobs(new SlotSet(range(0, 31), 0, 100), nodes32(), [
    nodeJob(2, 2, 60, J("toto")),
  ], { quotas: sixteen });
  assertEquals(r2.placed.map((p) => [p.start, count(p.res)]), [[0, 16]]);
});

Deno.test("kamelot quotas (OAR 3): four jobs, per-user resources and a project's job count", () => {
  const slots = new SlotSet(range(0, 31), 0, 10000);
  const q = new Quotas([rule("*,*,*,/", 16), rule("*,yop,*,*", UNLIMITED, 1)], range(0, 31));
  inGantt(slots, q, J("toto", { project: "" }), 0, 20, range(8, 23));
  inGantt(slots, q, J("lulu", { project: "yop" }), 0, 50, range(0, 7));
  const r = scheduleJobs(slots, nodes32(), [
    nodeJob(3, 1, 10, J("toto", { project: "" })),
    nodeJob(4, 1, 60, J("lulu", { project: "yop" })),
  ], { quotas: q });
  const at = new Map(r.placed.map((p) => [p.jobId, p]));
  // toto already uses 16: his job waits for the first one to end; lulu's project runs one
  // job at a time.
  assertEquals(at.get(3)!.start, 20);
  assertEquals(at.get(4)!.start, 50);
  assertEquals(count(at.get(3)!.res), 8);
});

Deno.test("kamelot quotas (OAR 3): three jobs, per-user resources and a queue's resource-hours", () => {
  const slots = new SlotSet(range(0, 31), 0, 10000);
  const q = new Quotas(
    [rule("*,*,*,/", 16), rule("default,*,*,*", UNLIMITED, UNLIMITED, 2000)],
    range(0, 31),
  );
  inGantt(slots, q, J("toto", { project: "" }), 50, 100, range(16, 23));
  const r = scheduleJobs(slots, nodes32(), [
    nodeJob(2, 1, 200, J("toto", { project: "" })),
    nodeJob(3, 1, 100, J("lulu", { project: "yop" })),
  ], { quotas: q });
  const at = new Map(r.placed.map((p) => [p.jobId, p.start]));
  // 8 × 200 = 1600 resource-seconds, plus the 800 of the job running over [50, 150): only
  // once that one is gone. 8 × 100 beside it: 1600, it fits at once.
  assertEquals(at.get(2), 150);
  assertEquals(at.get(3), 0);
});

Deno.test("kamelot quotas (OAR 3): rules from the file; a type rule holds its type only", () => {
  const q = new Quotas(
    parsed(`{"quotas": {"*,*,*,toto": [1,-1,-1], "*,*,*,john": [150,-1,-1]}}`).rules,
    range(0, 31),
  );
  const r = scheduleJobs(new SlotSet(range(0, 31), 0, 100), nodes32(), [
    nodeJob(1, 2, 60, J("toto")),
    nodeJob(2, 2, 60, J("tutu")),
  ], { quotas: q });
  assertOk(r.skipped.has(1));
  assertEquals(r.placed.map((p) => [p.jobId, count(p.res)]), [[2, 16]]);

  const t = new Quotas(
    parsed(`{"quotas": {"*,*,yop,*": [-1,1,-1]}, "job_types": ["yop"]}`).rules,
    range(0, 31),
  );
  const r2 = scheduleJobs(new SlotSet(range(0, 31), 0, 1000), nodes32(), [
    nodeJob(1, 1, 50, J("toto", { types: ["yop"] })),
    nodeJob(2, 1, 50, J("toto", { types: ["yop"] })),
    nodeJob(3, 1, 50, J("toto")),
  ], { quotas: t });
  assertEquals(r2.placed.map((p) => [p.jobId, p.start]), [[1, 0], [2, 50], [3, 0]]);
});

Deno.test("kamelot quotas: no_quotas jobs are not held but count; containers neither", () => {
  const q = new Quotas([rule("*,*,*,alice", 8)], range(0, 31));
  const r = scheduleJobs(new SlotSet(range(0, 31), 0, 10000), nodes32(), [
    nodeJob(1, 1, 100, J("alice")),
    nodeJob(2, 2, 100, J("alice", { types: ["no_quotas"] })),
    nodeJob(3, 1, 100, J("alice")),
    nodeJob(4, 1, 100, J("alice", { types: ["container"] })),
    nodeJob(5, 1, 50, J("alice")),
  ], { quotas: q });
  const at = new Map(r.placed.map((p) => [p.jobId, p.start]));
  assertEquals(at.get(1), 0);
  assertEquals(at.get(2), 0); // 24 resources for alice: allowed, not checked
  assertEquals(at.get(3), 100); // alice is over 8 until both end
  assertEquals(at.get(4), 0); // a container is not checked: it takes the 8 resources left
  assertEquals(at.get(5), 200); // the container does not count; job 3 does until 200
});

Deno.test("kamelot quotas (#95): one running job allowed; the user's jobs queue up, others run", () => {
  const slots = new SlotSet(range(0, 31), 1000);
  const q = new Quotas(
    parsed(`{"quotas": {"*,*,besteffort,*": [-1,-1,-1], "*,*,*,girpierr": [-1,1,-1]}}`).rules,
    range(0, 31),
  );
  // Running since before the round and past its walltime: counted until now at least.
  inGantt(slots, q, J("girpierr"), 0, 1001, range(0, 0));
  const jobs: SchedJob[] = [];
  for (let k = 1; k <= 200; k++) {
    const user = k % 4 === 0 ? "other" : "girpierr";
    jobs.push({ ...nodeJob(k, 1, 100, J(user)), minStart: 1000 });
  }
  const r = scheduleJobs(slots, nodes32(), jobs, { quotas: q });
  assertEquals(r.skipped.size, 0);
  const starts = r.placed.filter((p) => p.jobId % 4 !== 0).map((p) => p.start).sort((a, b) =>
    a - b
  );
  // One at a time, one after the other, from the running job's end on.
  starts.forEach((s, i) => assertEquals(s, 1001 + 100 * i));
});

Deno.test("kamelot temporal quotas: each instant within the rules then in force", () => {
  const res = range(0, 31);
  const rjob = (jobId: number, n: number, walltime: number, user = "alice"): SchedJob => ({
    jobId,
    minStart: 0,
    moldables: [{
      moldableId: jobId,
      walltime,
      groups: [{ levels: [{ label: "resource_id", count: n }], constraint: res }],
    }],
    quota: J(user),
  });
  // At most 4 resources for alice before 1000, 16 from then on; search up to 3000.
  const sets = [[rule("*,*,*,alice", 4)], [rule("*,*,*,alice", 16)]];
  const calendar = pieceCalendar([1000], [0, 1]);
  const q = new Quotas(sets[0], res, { sets, calendar, horizon: 3000 });
  const r = scheduleJobs(new SlotSet(res, 0), nodes32(), [
    rjob(1, 8, 500), // over 4 on its own: not before 1000
    rjob(2, 4, 2000), // 4, then 4 + 8: across the change
    rjob(3, 4, 100), // 8 before 1000; 16 at 1000
    rjob(4, 1, 100), // 5 before 1000, 17 until job 3 ends
    rjob(5, 8, 2500), // cannot end by 3000 from 1000 on
    rjob(6, 1, 5000, "bob"), // no rule for bob: no horizon either
  ], { quotas: q });
  const at = new Map(r.placed.map((p) => [p.jobId, p.start]));
  assertEquals([at.get(1), at.get(2), at.get(3), at.get(4)], [1000, 0, 1000, 1100]);
  assertStringIncludes(r.skipped.get(5)!, "no window for the job within QUOTAS_WINDOW_TIME_LIMIT");
  assertEquals(at.get(6), 0);
});

// --- property: random workloads ---------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The test's own reading of a rule (not quotas.ts's): does it apply, and to which counter. */
function groupOf(r: QuotaRule, i: number, j: QuotaJob): string | null {
  const types = j.types.map((t) => t.split("=")[0]);
  const ok = (f: string, v: string) => f === "*" || f === "/" || f === v;
  if (!ok(r.queue, j.queue) || !ok(r.project, j.project) || !ok(r.user, j.user)) return null;
  if (r.jobType !== "*" && !types.includes(r.jobType)) return null;
  return [
    i,
    r.queue === "/" ? j.queue : "",
    r.project === "/" ? j.project : "",
    r.user === "/" ? j.user : "",
  ].join("|");
}

interface Counted {
  job: QuotaJob;
  start: number;
  /** Exclusive. */
  end: number;
  nb: number;
  walltime: number;
  /** Placed this round and checked: must never sit where its group is over a limit. */
  checked: boolean;
}

/**
 * A calendar of the test's own: `sets[i]` in force over [cuts[i - 1], cuts[i]) (the first from
 * the beginning of time, the last for ever).
 */
function pieceCalendar(
  cuts: number[],
  sets: number[],
): QuotaCalendar & { setAt(t: number): number } {
  const index = (t: number) => cuts.filter((c) => c <= t).length;
  return {
    setAt: (t) => sets[index(t)],
    at(t) {
      const i = index(t);
      return { set: sets[i], until: i < cuts.length ? cuts[i] : Infinity };
    },
  };
}

/**
 * Every instant where a checked job of a group runs, the group's counters are within the limits
 * in force (`setAt`: which rule set, when there are several). Returns how many such instants had
 * a counter exactly at its limit (the test bites).
 */
function assertWithinLimits(
  sets: QuotaRule[][],
  jobs: Counted[],
  what: string,
  calendar?: { setAt(t: number): number; cuts: number[] },
): number {
  let tight = 0;
  sets.forEach((rules, set) =>
    rules.forEach((r, i) => {
      const groups = new Map<string, Counted[]>();
      for (const c of jobs) {
        const g = groupOf(r, i, c.job);
        if (g === null) continue;
        const list = groups.get(g) ?? [];
        list.push(c);
        groups.set(g, list);
      }
      for (const [g, list] of groups) {
        const times = [
          ...new Set([...list.flatMap((c) => [c.start, c.end]), ...(calendar?.cuts ?? [])]),
        ].sort((a, b) => a - b);
        for (const t of times) {
          if ((calendar?.setAt(t) ?? 0) !== set) continue;
          const running = list.filter((c) => c.start <= t && t < c.end);
          if (!running.some((c) => c.checked)) continue;
          const nb = running.reduce((a, c) => a + c.nb, 0);
          const rs = running.reduce((a, c) => a + c.nb * c.walltime, 0);
          const l = r.limits;
          const over = (l.resources >= 0 && nb > l.resources) ||
            (l.jobs >= 0 && running.length > l.jobs) ||
            (l.resourceSeconds >= 0 && rs > l.resourceSeconds);
          if (over) {
            throw new Error(
              `${what}: set ${set} rule ${r.key} group ${g} at ${t}: ${nb} resources, ` +
                `${running.length} jobs, ${rs} resource-seconds; limits ${JSON.stringify(l)}`,
            );
          }
          if (nb === l.resources || running.length === l.jobs || rs === l.resourceSeconds) {
            tight++;
          }
        }
      }
    })
  );
  return tight;
}

/** One random workload under random rules (and a random calendar when `temporal`). */
function randomRound(seed: number, temporal: boolean): { tight: number; quotaSkips: number } {
  const what = `seed ${seed} (rerun with QUOTAS_SEED=${seed})`;
  const r = rng(seed * 7919 + (temporal ? 17 : 0));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const hosts = 1 + Math.floor(r() * 4), cores = 1 + Math.floor(r() * 4);
  const total = hosts * cores;
  const ids = [...Array(total).keys()];
  const hy: Hierarchy = new Map([
    ["resource_id", buildLevel("resource_id", ids)],
    ["node", buildLevel("node", ids.map((i) => Math.floor(i / cores)))],
  ]);
  const security = pick([0, 5]);
  const users = ["u1", "u2", "u3"], projects = ["p1", "p2"], queues = ["default", "q2"];
  const randomRules = () => {
    const rules: QuotaRule[] = [];
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
      const key = [
        pick(["*", "/", "default"]),
        pick(["*", "/", "p1"]),
        pick(["*", "*", "yop"]),
        pick(["*", "/", "u1"]),
      ].join(",");
      rules.push(rule(
        key,
        r() < 0.3 ? UNLIMITED : 1 + Math.floor(r() * total),
        r() < 0.5 ? UNLIMITED : Math.floor(r() * 4),
        r() < 0.6 ? UNLIMITED : 20 + Math.floor(r() * 1500),
      ));
    }
    return rules;
  };
  const sets = [randomRules()];
  let calendar: ReturnType<typeof pieceCalendar> & { cuts: number[] } | undefined;
  let horizon = Infinity;
  if (temporal) {
    for (let k = 1 + Math.floor(r() * 2); k > 0; k--) sets.push(randomRules());
    const cuts: number[] = [];
    for (let t = 1000 + Math.floor(r() * 300); t < 4000; t += 1 + Math.floor(r() * 400)) {
      cuts.push(t);
    }
    const pieces = [0, ...cuts.map(() => Math.floor(r() * sets.length))];
    calendar = { ...pieceCalendar(cuts, pieces), cuts };
    horizon = 1500 + Math.floor(r() * 4000);
  }
  const quotaJob = (): QuotaJob => ({
    queue: pick(queues),
    project: pick(projects),
    user: pick(users),
    types: r() < 0.3 ? ["yop"] : r() < 0.1 ? ["yop=2", "besteffort"] : [],
  });
  const quotas = new Quotas(
    sets[0],
    range(0, total - 1),
    calendar ? { sets, calendar, horizon } : null,
  );
  const slots = new SlotSet(range(0, total - 1), 1000);
  const counted: Counted[] = [];
  const placements: Placement[] = [];
  // Jobs already there (some no_quotas): they may well be over the limits themselves.
  for (let k = 0; k < 4; k++) {
    const n = 1 + Math.floor(r() * total);
    const s = 900 + Math.floor(r() * 200);
    const w = 1 + Math.floor(r() * 300);
    const from = Math.max(s, 1000);
    if (s + w <= from) continue;
    const res = takeFirst(slots.freeOver(from, s + w - from), n);
    if (res === null) continue;
    const job = quotaJob();
    if (r() < 0.3) job.types = [...job.types, "no_quotas"];
    slots.occupy(s, s + w - 1, res);
    quotas.add(job, s, s + w - 1, n, w);
    counted.push({ job, start: s, end: s + w, nb: n, walltime: w, checked: false });
    placements.push({ jobId: 1000 + k, moldableId: 0, start: s, walltime: w, res });
  }
  const jobs: SchedJob[] = [];
  const n = 5 + Math.floor(r() * 40);
  for (let k = 1; k <= n; k++) {
    const moldables = [];
    for (let m = r() < 0.2 ? 2 : 1; m > 0; m--) {
      const w = 1 + Math.floor(r() * 200) + security;
      const label = r() < 0.6 ? "resource_id" : "node";
      const groups: GroupRequest[] = [{
        levels: [{ label, count: 1 + Math.floor(r() * (label === "node" ? hosts : total)) }],
        constraint: range(0, total - 1),
      }];
      moldables.push({
        moldableId: k * 10 + m,
        walltime: w,
        groups,
        cacheKey: JSON.stringify([w, groups.map((g) => g.levels)]),
      });
    }
    jobs.push({
      jobId: k,
      minStart: 1000 + Math.floor(r() * 100),
      moldables,
      after: r() < 0.1 && k > 1 ? [k - 1] : undefined,
      timesharing: r() < 0.1 ? "u1:*" : null,
      quota: quotaJob(),
    });
  }
  const res = scheduleJobs(slots, hy, jobs, { quotas, security });

  // Every job placed or skipped (with a reason), never both.
  for (const j of jobs) {
    const placed = res.placed.some((p) => p.jobId === j.jobId);
    const why = res.skipped.get(j.jobId);
    assertOk(placed !== (why !== undefined), `${what}: job ${j.jobId} placed and skipped`);
    if (why !== undefined) assertOk(why.length > 0, `${what}: job ${j.jobId} skipped silently`);
  }
  // A skip is justified: the job alone breaks an applying rule (with each of its moldables,
  // counting the resources it asks), or it waits for a skipped job; under temporal quotas,
  // no window was found before the horizon.
  for (const [id, why] of res.skipped) {
    const j = jobs[id - 1];
    if (why.startsWith("waiting for job")) {
      assertOk(res.skipped.has(j.after![0]), `${what}: job ${id}: ${why}`);
      continue;
    }
    if (temporal) {
      assertStringIncludes(why, "within QUOTAS_WINDOW_TIME_LIMIT", what);
      continue;
    }
    assertOk(why.startsWith("quota "), `${what}: job ${id} skipped: ${why}`);
    for (const m of j.moldables) {
      const l = m.groups[0].levels[0];
      const nb = l.label === "node" ? l.count * cores : l.count;
      const w = m.walltime - security;
      const breaks = sets[0].some((rl, i) =>
        groupOf(rl, i, j.quota!) !== null && (
          (rl.limits.resources >= 0 && nb > rl.limits.resources) || rl.limits.jobs === 0 ||
          (rl.limits.resourceSeconds >= 0 && nb * w > rl.limits.resourceSeconds)
        )
      );
      assertOk(breaks, `${what}: job ${id} skipped (${why}) though moldable ${m.moldableId} fits`);
    }
  }
  // Resources never given twice (docs/differences.md #61), timesharing jobs aside; nothing past the
  // horizon.
  const plain = [...placements, ...res.placed.filter((p) => !p.timesharing)];
  for (let a = 0; a < plain.length; a++) {
    for (let b = a + 1; b < plain.length; b++) {
      const x = plain[a], y = plain[b];
      if (x.start < y.start + y.walltime && y.start < x.start + x.walltime) {
        assertOk(!overlaps(x.res, y.res), `${what}: jobs ${x.jobId} and ${y.jobId} overlap`);
      }
    }
  }
  for (const p of res.placed) {
    // The horizon bounds the search for the jobs some rule applies to.
    const job = jobs[p.jobId - 1].quota!;
    const ruled = sets.some((rules) =>
      rules.some((rl, i) =>
        groupOf(rl, i, job) !== null &&
        (rl.limits.resources >= 0 || rl.limits.jobs >= 0 || rl.limits.resourceSeconds >= 0)
      )
    );
    if (!ruled) continue;
    assertOk(p.start + p.walltime - 1 <= horizon, `${what}: job ${p.jobId} past the horizon`);
  }
  // The counters, recomputed from the final schedule.
  for (const p of res.placed) {
    const j = jobs[p.jobId - 1];
    counted.push({
      job: j.quota!,
      start: p.start,
      end: p.start + p.walltime,
      nb: count(p.res),
      walltime: p.walltime - security,
      checked: true,
    });
  }
  return {
    tight: assertWithinLimits(sets, counted, what, calendar),
    quotaSkips: [...res.skipped.values()].filter((w) => w.startsWith("quota")).length,
  };
}

for (const temporal of [false, true]) {
  Deno.test(
    `kamelot quotas: property (#95/#100) — random workloads keep within every rule${
      temporal ? ", under temporal quotas" : ""
    }`,
    () => {
      const only = Deno.env.get("QUOTAS_SEED");
      const seeds = only ? [Number(only)] : [...Array(200).keys()].map((k) => k + 1);
      let tight = 0, quotaSkips = 0;
      for (const seed of seeds) {
        const s = randomRound(seed, temporal);
        tight += s.tight;
        quotaSkips += s.quotaSkips;
      }
      if (!only) assertOk(tight > 100 && quotaSkips > 20, `too easy: ${tight} ${quotaSkips}`);
    },
  );
}

// --- rounds on a real database ----------------------------------------------------------------

const log = moduleLogger("meta_sched");
const SECURITY = 60;

interface Env {
  rids: number[];
  /** Writes the quotas file the rounds read. */
  quotas: (text: string) => Promise<void>;
  round: (now: number, extra?: Record<string, string | number>) => Promise<RoundReport>;
}

async function setup(db: TestDb): Promise<Env> {
  await referenceQueues(db.sql);
  const rids = await addCluster(db.sql, ["node1", "node2"], 4);
  const dir = await Deno.makeTempDir({ prefix: "oar-quotas-" });
  db.addTempDir(dir);
  const file = `${dir}/quotas_conf.json`;
  const notifier = new RecordingNotifier();
  const base = new Config({
    ...Object.fromEntries(db.config.entries()),
    SCHEDULER_JOB_SECURITY_TIME: SECURITY,
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
    QUOTAS: "yes",
    QUOTAS_CONF_FILE: file,
  });
  return {
    rids,
    quotas: (text) => Deno.writeTextFile(file, text),
    round: roundRunner(db.sql, base, log, notifier),
  };
}

const prediction = (db: TestDb, moldableId: number) => plannedStart(db.sql, moldableId);

async function job(db: TestDb, id: number) {
  const [r] = await db.sql<{ state: string; message: string; reservation: string }[]>`
    SELECT state, message, reservation FROM jobs WHERE job_id = ${id}`;
  return r;
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(name, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

dbTest(
  "round quotas: a user limited to N resources sees their extra jobs start later",
  async (db) => {
    const env = await setup(db);
    await env.quotas(`{"quotas": {"*,*,*,alice": [2,-1,-1]}}`);
    const now = await dbNow(db.sql);
    const a = [];
    for (let k = 0; k < 3; k++) {
      a.push(await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 }));
    }
    const bob = await submitJob(db.sql, { user: "bob", resources: 3, walltime: 600 });
    const r = await env.round(now);
    assertEquals(await prediction(db, a[0].moldableIds[0]), now);
    assertEquals(await prediction(db, a[1].moldableIds[0]), now);
    assertEquals(await prediction(db, a[2].moldableIds[0]), now + 600 + SECURITY);
    assertEquals(await prediction(db, bob.moldableIds[0]), now);
    assertEquals(
      r.launched.sort((x, y) => x - y),
      [a[0].jobId, a[1].jobId, bob.jobId].sort((x, y) => x - y),
    );
    assertEquals((await job(db, a[2].jobId)).state, "Waiting");
  },
);

dbTest("round quotas: max running jobs counts the running ones; per user", async (db) => {
  const env = await setup(db);
  await env.quotas(`{"quotas": {"*,*,*,/": [-1,1,-1]}}`);
  const now = await dbNow(db.sql);
  const running = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
  await makeRunning(db.sql, running.jobId, running.moldableIds[0], [env.rids[0]], now - 100);
  const next = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 300 });
  const bob1 = await submitJob(db.sql, { user: "bob", resources: 1, walltime: 300 });
  const bob2 = await submitJob(db.sql, { user: "bob", resources: 1, walltime: 300 });
  const r = await env.round(now);
  assertEquals(await prediction(db, next.moldableIds[0]), now - 100 + 600 + SECURITY);
  assertEquals(await prediction(db, bob1.moldableIds[0]), now);
  assertEquals(await prediction(db, bob2.moldableIds[0]), now + 300 + SECURITY);
  assertEquals(r.launched, [bob1.jobId]);
});

dbTest(
  "round quotas: resource-hours at a time; a job over them alone is skipped, not lost",
  async (db) => {
    const env = await setup(db);
    await env.quotas(`{"quotas": {"*,*,*,alice": [-1,-1,1]}}`);
    const now = await dbNow(db.sql);
    const huge = await submitJob(db.sql, { user: "alice", resources: 2, walltime: 3600 });
    const a1 = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 2400 });
    const a2 = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 2400 });
    const r = await env.round(now);
    assertEquals(await prediction(db, huge.moldableIds[0]), null);
    const h = await job(db, huge.jobId);
    assertEquals(h.state, "Waiting");
    assertStringIncludes(h.message, "at most 1 resource-hours at a time, the job needs 2");
    assertStringIncludes(r.skipped.get(huge.jobId)!, "resource-hours");
    // 2/3 of an hour each: not both at once.
    assertEquals(await prediction(db, a1.moldableIds[0]), now);
    assertEquals(await prediction(db, a2.moldableIds[0]), now + 2400 + SECURITY);
  },
);

dbTest("round quotas: an advance reservation that would break a quota is refused", async (db) => {
  const env = await setup(db);
  await env.quotas(`{"quotas": {"*,*,*,alice": [2,-1,-1]}}`);
  const now = await dbNow(db.sql);
  const running = await submitJob(db.sql, { user: "alice", resources: 2, walltime: 3600 });
  await makeRunning(db.sql, running.jobId, running.moldableIds[0], env.rids.slice(0, 2), now);
  const early = await submitJob(db.sql, {
    user: "alice",
    resources: 1,
    walltime: 600,
    reservationStart: now + 600,
  });
  const late = await submitJob(db.sql, {
    user: "alice",
    resources: 2,
    walltime: 600,
    reservationStart: now + 7200,
  });
  const bob = await submitJob(db.sql, {
    user: "bob",
    resources: 2,
    walltime: 600,
    reservationStart: now + 600,
  });
  await env.round(now);
  const e = await job(db, early.jobId);
  assertEquals(e.state, "Error");
  assertStringIncludes(e.message, "This advance reservation cannot run");
  assertStringIncludes(e.message, "quota *,*,*,alice: 3 resources in use at a time");
  assertEquals((await job(db, late.jobId)).state, "Waiting");
  assertEquals(await prediction(db, late.moldableIds[0]), now + 7200);
  assertEquals((await job(db, bob.jobId)).state, "Waiting");
  assertEquals(await prediction(db, bob.moldableIds[0]), now + 600);
  // The accepted reservation counts for the jobs after it: alice's 2-resource job, which
  // would overlap it, goes after it.
  const after = await submitJob(db.sql, { user: "alice", resources: 2, walltime: 7200 });
  await env.round(now + 3660);
  const p = await prediction(db, after.moldableIds[0]);
  assertEquals(p, now + 7200 + 600 + SECURITY);
});

dbTest(
  "round quotas: no_quotas jobs are exempt (and counted); besteffort counts in its queue",
  async (db) => {
    const env = await setup(db);
    await env.quotas(`{"quotas": {"*,*,*,alice": [1,-1,-1]}}`);
    const now = await dbNow(db.sql);
    const a = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
    const free = await submitJob(db.sql, {
      user: "alice",
      resources: 3,
      walltime: 600,
      types: ["no_quotas"],
    });
    const c = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
    // A running besteffort job of alice's does not hold her default-queue jobs back.
    const be = await submitJob(db.sql, { user: "alice", resources: 1, queue: "besteffort" });
    await makeRunning(db.sql, be.jobId, be.moldableIds[0], [env.rids[7]], now - 10);
    const r = await env.round(now);
    assertEquals(await prediction(db, a.moldableIds[0]), now);
    assertEquals(await prediction(db, free.moldableIds[0]), now);
    assertEquals(await prediction(db, c.moldableIds[0]), now + 600 + SECURITY);
    assertOk(r.launched.includes(a.jobId) && r.launched.includes(free.jobId));
    // ...but it does hold her besteffort ones.
    const be2 = await submitJob(db.sql, { user: "alice", resources: 1, queue: "besteffort" });
    await env.round(now);
    const p = await prediction(db, be2.moldableIds[0]);
    assertOk(p !== null && p > now, `besteffort job predicted at ${p}`);
  },
);

dbTest("round quotas: a malformed file holds scheduling without losing a job", async (db) => {
  const env = await setup(db);
  await env.quotas(`{"quotas": {"*,*,*,alice": [2,-1,-1],}}`);
  const now = await dbNow(db.sql);
  const w = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
  const ar = await submitJob(db.sql, {
    user: "alice",
    resources: 1,
    walltime: 600,
    reservationStart: now + 600,
  });
  const r = await env.round(now);
  assertEquals(r.exitCode, 0);
  assertEquals(r.launched, []);
  const j = await job(db, w.jobId);
  assertEquals(j.state, "Waiting");
  assertStringIncludes(j.message, "quotas configuration error");
  assertStringIncludes(j.message, "not valid JSON");
  const a = await job(db, ar.jobId);
  assertEquals([a.state, a.reservation], ["Waiting", "toSchedule"]);
  // A missing file, a bad setting: the same.
  const missing = await env.round(now, { QUOTAS_CONF_FILE: "/nonexistent/quotas.json" });
  assertStringIncludes(missing.skipped.get(w.jobId)!, "cannot read /nonexistent/quotas.json");
  const mode = await env.round(now, { QUOTAS_ALL_NB_RESOURCES_MODE: "everything" });
  assertStringIncludes(mode.skipped.get(w.jobId)!, "QUOTAS_ALL_NB_RESOURCES_MODE");
  // Fixed: both go.
  await env.quotas(`{"quotas": {"*,*,*,alice": [2,-1,-1]}}`);
  const fixed = await env.round(now);
  assertEquals(fixed.launched, [w.jobId]);
  assertEquals((await job(db, ar.jobId)).state, "Waiting");
  assertEquals((await job(db, ar.jobId)).reservation, "Scheduled");
  assertEquals(await prediction(db, ar.moldableIds[0]), now + 600);
});

dbTest("round quotas: QUOTAS=no ignores the file entirely", async (db) => {
  const env = await setup(db);
  await env.quotas("not json at all");
  const now = await dbNow(db.sql);
  const a = [];
  for (let k = 0; k < 3; k++) a.push(await submitJob(db.sql, { user: "alice", resources: 1 }));
  const r = await env.round(now, { QUOTAS: "no" });
  assertEquals(r.launched.length, 3);
});

/** Local `YYYY-MM-DD hh:mm` of an instant (the calendar's format). */
function localText(t: number): string {
  const d = new Date(t * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:` +
    p(d.getMinutes());
}

dbTest(
  "round quotas: temporal quotas (a oneshot period), reservations and the window limit",
  async (db) => {
    const env = await setup(db);
    const now = await dbNow(db.sql);
    // From the first minute 20 minutes ahead, for an hour: alice may use 1 resource.
    const begin = Math.ceil((now + 1200) / 60) * 60;
    const end = begin + 3600;
    await env.quotas(JSON.stringify({
      quotas: {},
      oneshot: [[localText(begin), localText(end), "tight", "maintenance"]],
      tight: { "*,*,*,alice": [1, -1, -1] },
    }));
    const short = await submitJob(db.sql, { user: "alice", resources: 2, walltime: 600 });
    const long = await submitJob(db.sql, { user: "alice", resources: 2, walltime: 3600 });
    const bob = await submitJob(db.sql, { user: "bob", resources: 2, walltime: 3600 });
    const ar = await submitJob(db.sql, {
      user: "alice",
      resources: 2,
      walltime: 600,
      reservationStart: begin + 60,
    });
    const r = await env.round(now);
    assertEquals(await prediction(db, short.moldableIds[0]), now); // over before the period
    assertEquals(await prediction(db, long.moldableIds[0]), end); // would run into it
    assertEquals(await prediction(db, bob.moldableIds[0]), now);
    assertEquals(r.launched.sort((x, y) => x - y), [short.jobId, bob.jobId].sort((x, y) => x - y));
    const a = await job(db, ar.jobId);
    assertEquals(a.state, "Error");
    assertStringIncludes(a.message, "This advance reservation cannot run: quota *,*,*,alice");
    // With a window limit ending before the period does, the long job is not scheduled.
    const limited = await env.round(now, { QUOTAS_WINDOW_TIME_LIMIT: 3000 });
    assertStringIncludes(limited.skipped.get(long.jobId)!, "QUOTAS_WINDOW_TIME_LIMIT");
    assertEquals((await job(db, long.jobId)).state, "Waiting");
  },
);

dbTest(
  "meta_sched as a process, under its own permission flags, reads the quotas and priority files",
  async (db) => {
    await referenceQueues(db.sql);
    await addCluster(db.sql, ["node1"], 4);
    const dir = await Deno.makeTempDir({ prefix: "oar-quotas-proc-" });
    db.addTempDir(dir);
    await Deno.writeTextFile(`${dir}/quotas.json`, `{"quotas": {"*,*,*,alice": [1,-1,-1]}}`);
    await Deno.writeTextFile(`${dir}/priority.json`, `{"age_weight": 1}`);
    const conf = await writeConfigFile(db, {
      QUOTAS: "yes",
      QUOTAS_CONF_FILE: `${dir}/quotas.json`,
      JOB_PRIORITY: "MULTIFACTOR",
      PRIORITY_CONF_FILE: `${dir}/priority.json`,
      LOG_FILE: ":stderr:",
      LOG_LEVEL: 2,
    });
    const a = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
    const b = await submitJob(db.sql, { user: "alice", resources: 1, walltime: 600 });
    const out = await new Deno.Command(Deno.execPath(), {
      args: entryArgs("meta_sched", readConfigFile(conf), []),
      env: { OARCONFFILE: conf },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    // Read: alice's quota of one resource lets one of her jobs start, not both, not none.
    assertEquals((await job(db, a.jobId)).state, "toLaunch");
    assertEquals((await job(db, b.jobId)).state, "Waiting");
    assertOk(!/priority|quotas/i.test(stderr), stderr);
  },
);
