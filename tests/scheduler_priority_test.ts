/**
 * Multifactor priority (JOB_PRIORITY=MULTIFACTOR): the priority file's parsing, each factor on
 * known numbers, the weighted sort with an injected `now`, then rounds on a real database: one
 * factor at a time decides which of two jobs that cannot run together starts now, the per-round
 * limit keeps the highest priorities, and a missing or malformed file is reported and leaves
 * FIFO order. Platform as the reference's scheduler tests: resources on host `localhost`,
 * queues default (prio 3) and besteffort (prio 0), security time 60 s.
 */
import { Config } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { type Logger, moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import {
  ageFactor,
  defaultPrioritySettings,
  groupSize,
  jobSize,
  karmaFactor,
  niceFactor,
  parsePrioritySettings,
  type PlatformSize,
  type PriorityFacts,
  priorityOf,
  type PrioritySettings,
  qosFactor,
  queueFactor,
  shapeFactor,
  sortByPriority,
  typeNumber,
} from "../modules/meta_sched/kamelot/priority.ts";
import type { RoundReport } from "../modules/meta_sched/round.ts";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  addAccounting,
  addCluster,
  plannedStart,
  referenceQueues,
  roundRunner,
  submitJob,
} from "./support/sched_fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;
const DAY = 86400;
const SECURITY = 60;

// --- the priority file -----------------------------------------------------------------------

Deno.test("priority file: OAR 3's keys, defaults for the rest", () => {
  const { settings, problems } = parsePrioritySettings(JSON.stringify({
    age_weight: 10,
    age_coef: 1e-5,
    queue_weight: 2,
    queue_coefs: { default: 0.5, urgent: 1 },
    work_weight: 3,
    work_mode: 1,
    size_weight: "4",
    karma_weight: 5,
    qos_weight: 6,
    nice_weight: 7,
  }));
  assertEquals(problems, []);
  assertEquals(settings.weights, {
    age: 10,
    queue: 2,
    work: 3,
    size: 4,
    karma: 5,
    qos: 6,
    nice: 7,
  });
  assertEquals(settings.ageCoef, 1e-5);
  assertEquals([...settings.queueCoefs], [["default", 0.5], ["urgent", 1]]);
  assertEquals([settings.workMode, settings.sizeMode], ["big", "small"]);
  // OAR 3's test file: one weight, everything else at its default.
  const one = parsePrioritySettings('{"karma_weight": 1.0}');
  assertEquals(one.problems, []);
  assertEquals(one.settings.weights, { ...defaultPrioritySettings().weights, karma: 1 });
  assertEquals(one.settings.ageCoef, 1.65e-6);
});

Deno.test("priority file: what cannot be used is reported and left at its default", () => {
  for (const text of ["age_weight: 10", "", "[1, 2]", "null", "42"]) {
    const { settings, problems } = parsePrioritySettings(text);
    assertEquals(settings, defaultPrioritySettings(), text);
    assertEquals(problems.length, 1, text);
    assertStringIncludes(problems[0], "every weight is 0");
  }
  const { settings, problems } = parsePrioritySettings(JSON.stringify({
    age_weight: -1,
    size_weight: "lots",
    nice_weight: 2,
    age_coef: 0,
    work_mode: "sideways",
    queue_coefs: { default: 1, other: "high" },
    agew_eight: 3,
  }));
  assertEquals(settings.weights, { ...defaultPrioritySettings().weights, nice: 2 });
  assertEquals(settings.ageCoef, 1.65e-6);
  assertEquals(settings.workMode, "small");
  assertEquals([...settings.queueCoefs], [["default", 1]]);
  assertEquals(problems.length, 6);
  for (
    const word of ["age_weight", "size_weight", "age_coef", "work_mode", "other", "agew_eight"]
  ) {
    assertOk(problems.some((p) => p.includes(word)), `${word} in ${problems.join(" | ")}`);
  }
});

// --- each factor -------------------------------------------------------------------------------

Deno.test("factor age: grows with the wait, full at 1 / age_coef, never negative", () => {
  const coef = 1 / (10 * DAY);
  assertEquals(ageFactor(0, coef), 0);
  assertOk(close(ageFactor(DAY, coef), 0.1));
  assertOk(close(ageFactor(5 * DAY, coef), 0.5));
  assertEquals(ageFactor(30 * DAY, coef), 1);
  assertEquals(ageFactor(-100, coef), 0); // submitted "after" now (clock skew)
  // OAR 3's default coefficient: full after a week, and an hour already counts.
  assertOk(close(ageFactor(7 * DAY, 1.65e-6), 0.99792));
  assertOk(ageFactor(3600, 1.65e-6) > ageFactor(1800, 1.65e-6));
});

Deno.test("factor queue: the queue's coefficient, 0 when it has none", () => {
  const coefs = new Map([["default", 0.25], ["urgent", 1]]);
  assertEquals(queueFactor("urgent", coefs), 1);
  assertEquals(queueFactor("default", coefs), 0.25);
  assertEquals(queueFactor("besteffort", coefs), 0);
});

Deno.test("factors work and size: a fraction, reversed when small jobs go first", () => {
  assertEquals(shapeFactor(0.25, "small"), 0.75);
  assertEquals(shapeFactor(0.25, "big"), 0.25);
  assertEquals(shapeFactor(3, "big"), 1); // more than the platform holds
  assertEquals(shapeFactor(3, "small"), 0);
});

Deno.test("size of a request: counts times the resources of the last level's blocks", () => {
  // 2 hosts of 4 cores, one cpu each.
  const p: PlatformSize = {
    resources: 8,
    units: new Map([["resource_id", 8], ["network_address", 2], ["cpu", 2], ["core", 8]]),
  };
  const lv = (...l: [string, number][]) => l.map(([label, count]) => ({ label, count }));
  assertEquals(groupSize(lv(["resource_id", 3]), p), 3);
  assertEquals(groupSize(lv(["network_address", 1]), p), 4);
  assertEquals(groupSize(lv(["network_address", 2], ["core", 2]), p), 4);
  assertEquals(groupSize(lv(["network_address", -1]), p), 8); // ALL hosts
  assertEquals(groupSize(lv(["network_address", 1], ["core", -2]), p), 4); // BEST cores of one
  assertEquals(groupSize([], p), 0);
  // A job's size is its smallest moldable's; its work too, each on its own.
  const shape = jobSize([
    { walltime: 100, groups: [lv(["network_address", 2]), lv(["resource_id", 1])] }, // 9
    { walltime: 1000, groups: [lv(["core", 2])] }, // 2
  ], p);
  assertEquals(shape, { size: 2, work: 900 });
  assertEquals(jobSize([{ walltime: 60, groups: [] }], p), null);
});

Deno.test("factor karma: 1 / (1 + karma), decreasing and bounded below 0 too", () => {
  assertEquals(karmaFactor(0), 1);
  assertEquals(karmaFactor(1), 0.5);
  assertEquals(karmaFactor(3), 0.25);
  assertEquals(karmaFactor(-1), 1.5);
  const ks = [-100, -3, -1, -0.5, -0.01, 0, 0.01, 0.5, 1, 10];
  for (let i = 1; i < ks.length; i++) {
    assertOk(karmaFactor(ks[i]) < karmaFactor(ks[i - 1]), `at ${ks[i]}`);
    assertOk(karmaFactor(ks[i]) > 0 && karmaFactor(ks[i]) < 2);
  }
});

Deno.test("factors qos and nice: from the job's types; nice only ever lowers", () => {
  assertEquals(typeNumber(["besteffort", "qos=0.5"], "qos"), 0.5);
  assertEquals(typeNumber(["qos=0.2", "qos=0.7"], "qos"), 0.7);
  assertEquals(typeNumber(["qos", "qos=", "qos=high", "qosx=1"], "qos"), null);
  assertEquals(typeNumber(["nice=-5"], "nice"), -5);
  assertEquals(qosFactor(null), 0);
  assertEquals(qosFactor(0.3), 0.3);
  assertEquals(qosFactor(7), 1);
  assertEquals(qosFactor(-2), 0);
  assertEquals(niceFactor(null), 1);
  assertEquals(niceFactor(0), 1);
  assertEquals(niceFactor(1), 0.5);
  assertEquals(niceFactor(9), 0.1);
  // A user's negative nice is no better than no nice at all.
  assertEquals(niceFactor(-1000), 1);
});

// --- the weighted sum and the sort ------------------------------------------------------------

function facts(over: Partial<PriorityFacts> = {}): PriorityFacts {
  return {
    queue: "default",
    submissionTime: 0,
    size: null,
    work: null,
    karma: 0,
    qos: null,
    nice: null,
    ...over,
  };
}

function settingsWith(
  weights: Partial<PrioritySettings["weights"]>,
  more: Partial<Omit<PrioritySettings, "weights">> = {},
): PrioritySettings {
  const s = defaultPrioritySettings();
  return { ...s, ...more, weights: { ...s.weights, ...weights } };
}

Deno.test("priority: the sum of weight × factor", () => {
  const now = 1_000_000;
  const s = settingsWith(
    { age: 100, queue: 10, work: 4, size: 8, karma: 2, qos: 5, nice: 3 },
    { ageCoef: 1 / DAY, queueCoefs: new Map([["default", 0.5]]) },
  );
  const f = facts({
    submissionTime: now - DAY / 4,
    size: 2,
    work: 300,
    karma: 1,
    qos: 0.4,
    nice: 1,
  });
  const p = priorityOf(f, s, { now, platformResources: 8, maxWork: 1200 });
  // age 100×0.25 + queue 10×0.5 + work 4×(1−0.25) + size 8×(1−0.25) + karma 2×0.5
  //   + qos 5×0.4 + nice 3×0.5
  assertOk(close(p, 25 + 5 + 3 + 6 + 1 + 2 + 1.5), String(p));
  // No weight: 0, whatever the job.
  assertEquals(
    priorityOf(f, defaultPrioritySettings(), { now, platformResources: 8, maxWork: 1 }),
    0,
  );
  // Unknown size and work give no bonus.
  assertOk(close(
    priorityOf(facts({ submissionTime: now }), s, {
      now,
      platformResources: 8,
      maxWork: 1200,
    }),
    5 + 2 + 3,
  ));
});

Deno.test("sort: highest priority first, ties by job id, with an injected now", () => {
  const now = 50 * DAY;
  const jobs = [
    { jobId: 5, submitted: now - DAY, queue: "default" },
    { jobId: 2, submitted: now - DAY, queue: "default" },
    { jobId: 9, submitted: now - 3 * DAY, queue: "default" },
    { jobId: 1, submitted: now, queue: "default" },
    { jobId: 7, submitted: now - 2 * DAY, queue: "urgent" },
  ];
  const ageOnly = settingsWith({ age: 1 }, { ageCoef: 1 / (10 * DAY) });
  const factsOf = (j: typeof jobs[number]) =>
    facts({ submissionTime: j.submitted, queue: j.queue });
  const { ordered, priority } = sortByPriority(jobs, factsOf, ageOnly, {
    now,
    platformResources: 4,
  });
  assertEquals(ordered.map((j) => j.jobId), [9, 7, 2, 5, 1]);
  assertOk(close(priority.get(9)!, 0.3));
  // A week later every job is older (job 9 at the full factor): the same order.
  const earlier = sortByPriority(jobs, factsOf, ageOnly, {
    now: now + 7 * DAY,
    platformResources: 4,
  });
  assertEquals(earlier.ordered.map((j) => j.jobId), [9, 7, 2, 5, 1]);
  // No weight at all: FIFO.
  const fifo = sortByPriority(jobs, factsOf, defaultPrioritySettings(), {
    now,
    platformResources: 4,
  });
  assertEquals(fifo.ordered.map((j) => j.jobId), [1, 2, 5, 7, 9]);
  // The queue weight outweighs age; a queue left out of queue_coefs is reported once.
  const warnings: string[] = [];
  const byQueue = sortByPriority(
    jobs,
    factsOf,
    settingsWith({ age: 1, queue: 10 }, {
      ageCoef: 1 / (10 * DAY),
      queueCoefs: new Map([["urgent", 1]]),
    }),
    { now, platformResources: 4 },
    (m) => warnings.push(m),
  );
  assertEquals(byQueue.ordered.map((j) => j.jobId), [7, 9, 2, 5, 1]);
  assertEquals(warnings.length, 1);
  assertStringIncludes(warnings[0], "queue default");
});

Deno.test("sort: work is measured against the largest waiting job's", () => {
  const jobs = [
    { jobId: 1, work: 1000 },
    { jobId: 2, work: 100 },
    { jobId: 3, work: 500 },
  ];
  const ctx = { now: 0, platformResources: 10 };
  const small = sortByPriority(
    jobs,
    (j) => facts({ work: j.work, size: 1 }),
    settingsWith({ work: 1 }),
    ctx,
  );
  assertEquals(small.ordered.map((j) => j.jobId), [2, 3, 1]);
  assertOk(close(small.priority.get(2)!, 0.9));
  assertEquals(small.priority.get(1), 0);
  const big = sortByPriority(
    jobs,
    (j) => facts({ work: j.work, size: 1 }),
    settingsWith({ work: 1 }, { workMode: "big" }),
    ctx,
  );
  assertEquals(big.ordered.map((j) => j.jobId), [1, 3, 2]);
});

Deno.test("sort: 10,000 waiting jobs", () => {
  const now = 100 * DAY;
  const jobs = Array.from({ length: 10_000 }, (_, i) => ({
    jobId: i + 1,
    f: facts({
      submissionTime: now - ((i * 7919) % (20 * DAY)),
      size: 1 + (i % 64),
      work: (1 + (i % 64)) * (60 + (i % 3600)),
      queue: i % 3 === 0 ? "urgent" : "default",
      qos: i % 11 === 0 ? 1 : null,
      nice: i % 13 === 0 ? 5 : null,
      karma: (i % 17) / 10,
    }),
  }));
  const s = settingsWith(
    { age: 1000, queue: 100, work: 50, size: 50, karma: 200, qos: 500, nice: 20 },
    { queueCoefs: new Map([["urgent", 1], ["default", 0.2]]) },
  );
  const { ordered, priority } = sortByPriority(jobs, (j) => j.f, s, { now, platformResources: 64 });
  assertEquals(ordered.length, 10_000);
  assertEquals(new Set(ordered.map((j) => j.jobId)).size, 10_000);
  for (let i = 1; i < ordered.length; i++) {
    const a = priority.get(ordered[i - 1].jobId)!, b = priority.get(ordered[i].jobId)!;
    assertOk(a > b || (a === b && ordered[i - 1].jobId < ordered[i].jobId), `at ${i}`);
  }
});

// --- rounds on a real database ----------------------------------------------------------------

/** The meta-scheduler's logger, with its warnings kept for the test to read. */
function capturingLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const base = moduleLogger("meta_sched");
  const log = new Proxy(base, {
    get(target, prop) {
      if (prop === "warn" || prop === "warning") {
        return (msg: string, props?: Record<string, unknown>) => {
          warnings.push(msg.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k])));
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { log, warnings };
}

interface Env {
  now: number;
  warnings: string[];
  /** Writes the priority file (JSON of `weights`, or the text as is). */
  priorities: (weights: Record<string, unknown> | string) => Promise<void>;
  round: (extra?: Record<string, string | number>) => Promise<RoundReport>;
}

async function setup(db: TestDb, cores = 4): Promise<Env> {
  await referenceQueues(db.sql);
  await addCluster(db.sql, ["localhost"], cores);
  const dir = await Deno.makeTempDir({ prefix: "oar-priority-" });
  db.addTempDir(dir);
  const file = `${dir}/priority_conf.json`;
  const notifier = new RecordingNotifier();
  const { log, warnings } = capturingLog();
  const base = new Config({
    ...Object.fromEntries(db.config.entries()),
    SCHEDULER_JOB_SECURITY_TIME: SECURITY,
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
    JOB_PRIORITY: "MULTIFACTOR",
    PRIORITY_CONF_FILE: file,
  });
  const now = await dbNow(db.sql);
  const run = roundRunner(db.sql, base, log, notifier);
  return {
    now,
    warnings,
    priorities: (w) => Deno.writeTextFile(file, typeof w === "string" ? w : JSON.stringify(w)),
    round: (extra = {}) => run(now, extra),
  };
}

const start = (db: TestDb, moldableId: number) => plannedStart(db.sql, moldableId);

/** Puts every job back to Waiting with no decision, for the next round to decide again. */
async function reset(db: TestDb): Promise<void> {
  await db.sql`UPDATE jobs SET state = 'Waiting', start_time = 0, assigned_moldable_job = 0`;
  await db.sql`DELETE FROM assigned_resources`;
  await db.sql`DELETE FROM gantt_jobs_resources`;
  await db.sql`DELETE FROM gantt_jobs_predictions`;
}

async function submittedAgo(db: TestDb, jobId: number, now: number, seconds: number) {
  await db.sql`UPDATE jobs SET submission_time = ${now - seconds} WHERE job_id = ${jobId}`;
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(name, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);

dbTest("round: with the age weight, an older job goes before a younger one", async (db) => {
  const env = await setup(db);
  // Both need the whole platform: only one can start now.
  const young = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const old = await submitJob(db.sql, { resources: 4, walltime: 600 });
  await submittedAgo(db, young.jobId, env.now, 3600);
  await submittedAgo(db, old.jobId, env.now, 2 * DAY);
  // FIFO: the lower id.
  assertEquals((await env.round({ JOB_PRIORITY: "FIFO" })).launched, [young.jobId]);
  await reset(db);
  await env.priorities({ age_weight: 1 });
  const r = await env.round();
  assertEquals(r.launched, [old.jobId]);
  assertEquals(await start(db, young.moldableIds[0]), env.now + 600 + SECURITY);
  assertEquals(env.warnings.length, 0, env.warnings.join("\n"));
});

dbTest("round: with the size weight, a small job goes before a big one (or after)", async (db) => {
  const env = await setup(db);
  const big = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const small = await submitJob(db.sql, { resources: 1, walltime: 600 });
  await env.priorities({ size_weight: 1 });
  assertEquals((await env.round()).launched, [small.jobId]);
  assertEquals(await start(db, big.moldableIds[0]), env.now + 600 + SECURITY);
  await reset(db);
  await env.priorities({ size_weight: 1, size_mode: 1 });
  assertEquals((await env.round()).launched, [big.jobId]);
  assertEquals(await start(db, small.moldableIds[0]), env.now + 600 + SECURITY);
  assertEquals(env.warnings.length, 0, env.warnings.join("\n"));
});

dbTest("round: sizes are counted through the hierarchy", async (db) => {
  const env = await setup(db);
  // `network_address=1` is the whole host: 4 resources, as many as `core=4`.
  const host = await submitJob(db.sql, {
    moldables: [{ walltime: 600, groups: [{ levels: [["network_address", 1]] }] }],
  });
  const cores = await submitJob(db.sql, {
    moldables: [{ walltime: 600, groups: [{ levels: [["core", 4]] }] }],
  });
  await env.priorities({ size_weight: 1 });
  assertEquals((await env.round()).launched, [host.jobId]); // 4 each: a tie, FIFO
  await reset(db);
  await db.sql`UPDATE job_resource_descriptions SET res_job_value = 2
    WHERE res_job_resource_type = 'core'`;
  assertEquals((await env.round()).launched, [cores.jobId]);
  assertEquals(env.warnings.length, 0, env.warnings.join("\n"));
});

dbTest("round: with the work weight, the shorter work goes first", async (db) => {
  const env = await setup(db);
  // 3 resources for 10 hours against 4 for 10 minutes: size alone would favour the first.
  const long = await submitJob(db.sql, { resources: 3, walltime: 36000 });
  const short = await submitJob(db.sql, { resources: 4, walltime: 600 });
  await env.priorities({ size_weight: 1 });
  assertEquals((await env.round()).launched, [long.jobId]);
  await reset(db);
  await env.priorities({ work_weight: 1 });
  assertEquals((await env.round()).launched, [short.jobId]);
  assertEquals(await start(db, long.moldableIds[0]), env.now + 600 + SECURITY);
});

dbTest("round: the queue weight orders the queues of one group", async (db) => {
  const env = await setup(db);
  // Same priority as default: one queue group, scheduled together.
  await db.sql`INSERT INTO queues (queue_name, priority, scheduler_policy, state)
    VALUES ('urgent', 3, 'kamelot', 'Active')`;
  const plain = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const urgent = await submitJob(db.sql, { resources: 4, walltime: 600, queue: "urgent" });
  await env.priorities({ queue_weight: 10, queue_coefs: { urgent: 1, default: 0.1 } });
  assertEquals((await env.round()).launched, [urgent.jobId]);
  assertEquals(await start(db, plain.moldableIds[0]), env.now + 600 + SECURITY);
  assertEquals(env.warnings.length, 0, env.warnings.join("\n"));
  // A queue missing from queue_coefs gets 0, and the log says so.
  await reset(db);
  await env.priorities({ queue_weight: 10, queue_coefs: { default: 0.1 } });
  assertEquals((await env.round()).launched, [plain.jobId]);
  assertOk(env.warnings.some((w) => w.includes("queue urgent is not in")), env.warnings.join("\n"));
});

dbTest("round: qos and nice types", async (db) => {
  const env = await setup(db);
  const plain = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const nice = await submitJob(db.sql, { resources: 4, walltime: 600, types: ["nice=5"] });
  const qos = await submitJob(db.sql, { resources: 4, walltime: 600, types: ["qos=1"] });
  const greedy = await submitJob(db.sql, { resources: 4, walltime: 600, types: ["nice=-1000"] });
  await env.priorities({ qos_weight: 10, nice_weight: 1 });
  // qos first; then plain and greedy tie (a negative nice is worth no more than none), by id;
  // the nice job last.
  assertEquals((await env.round()).launched, [qos.jobId]);
  const step = 600 + SECURITY;
  assertEquals(await start(db, plain.moldableIds[0]), env.now + step);
  assertEquals(await start(db, greedy.moldableIds[0]), env.now + 2 * step);
  assertEquals(await start(db, nice.moldableIds[0]), env.now + 3 * step);
});

dbTest("round: the karma weight reuses fairsharing's karma", async (db) => {
  const env = await setup(db);
  for (const type of ["USED", "ASKED"] as const) {
    await addAccounting(db.sql, {
      start: env.now - DAY,
      stop: env.now - 3600,
      user: "alice",
      type,
      consumption: 9000,
    });
    await addAccounting(db.sql, {
      start: env.now - DAY,
      stop: env.now - 3600,
      user: "bob",
      type,
      consumption: 1000,
    });
  }
  const a = await submitJob(db.sql, { user: "alice", resources: 4, walltime: 600 });
  const b = await submitJob(db.sql, { user: "bob", resources: 4, walltime: 600 });
  await env.priorities({ karma_weight: 1 });
  assertEquals((await env.round()).launched, [b.jobId]);
  const [{ message, last_karma }] = await db.sql<{ message: string; last_karma: number }[]>`
    SELECT message, last_karma FROM jobs WHERE job_id = ${a.jobId}`;
  assertStringIncludes(message, "Karma=1.800");
  assertOk(Math.abs(Number(last_karma) - 1.8) < 1e-6, String(last_karma)); // a real (float4)
});

dbTest(
  "round: MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND keeps the highest priorities",
  async (db) => {
    const env = await setup(db);
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await submitJob(db.sql, { resources: 1, walltime: 600 }));
    // The youngest ids are the oldest jobs.
    const ages = [3600, 2 * 3600, 3 * DAY, 5 * DAY];
    for (let i = 0; i < 4; i++) await submittedAgo(db, jobs[i].jobId, env.now, ages[i]);
    const limit = { MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND: 2 };
    const fifo = await env.round({ ...limit, JOB_PRIORITY: "FIFO" });
    assertEquals(sorted(fifo.launched), [jobs[0].jobId, jobs[1].jobId]);
    await reset(db);
    await env.priorities({ age_weight: 1 });
    const r = await env.round(limit);
    assertEquals(sorted(r.launched), [jobs[2].jobId, jobs[3].jobId]);
    assertEquals(await start(db, jobs[0].moldableIds[0]), null);
    assertEquals(await start(db, jobs[1].moldableIds[0]), null);
  },
);

dbTest("round: a missing or malformed priority file is reported, and jobs go FIFO", async (db) => {
  const env = await setup(db);
  const first = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const second = await submitJob(db.sql, { resources: 4, walltime: 600 });
  await submittedAgo(db, second.jobId, env.now, 5 * DAY);
  // No file yet.
  assertEquals((await env.round()).launched, [first.jobId]);
  assertOk(env.warnings.some((w) => w.includes("cannot be read")), env.warnings.join("\n"));
  assertEquals(await start(db, second.moldableIds[0]), env.now + 600 + SECURITY);
  // YAML (OAR 3 reads YAML; we read JSON): reported, FIFO.
  await reset(db);
  env.warnings.length = 0;
  await env.priorities("age_weight: 1\n");
  assertEquals((await env.round()).launched, [first.jobId]);
  assertOk(env.warnings.some((w) => w.includes("not JSON")), env.warnings.join("\n"));
  // One bad key among good ones: only that key is dropped.
  await reset(db);
  env.warnings.length = 0;
  await env.priorities({ age_weight: 1, size_weight: "big" });
  assertEquals((await env.round()).launched, [second.jobId]);
  assertOk(env.warnings.some((w) => w.includes("size_weight")), env.warnings.join("\n"));
});

dbTest("round: an unknown JOB_PRIORITY is reported and jobs go FIFO", async (db) => {
  const env = await setup(db);
  const first = await submitJob(db.sql, { resources: 4, walltime: 600 });
  const second = await submitJob(db.sql, { resources: 4, walltime: 600 });
  await submittedAgo(db, second.jobId, env.now, 5 * DAY);
  await env.priorities({ age_weight: 1 });
  assertEquals((await env.round({ JOB_PRIORITY: "SLURMISH" })).launched, [first.jobId]);
  assertOk(env.warnings.some((w) => w.includes("SLURMISH")), env.warnings.join("\n"));
});
