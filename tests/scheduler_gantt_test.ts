/**
 * The Gantt tables written by difference (gantt.ts): the delta itself, and on a real database,
 * rounds whose tables are exactly those a flush-and-rebuild round (OAR's way) leaves, with the
 * `_visu` copies equal to them after every round, repaired when they were not.
 */
import { dbNow } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { diffGantt, emptyDelta, type GanttMap } from "../modules/meta_sched/kamelot/gantt.ts";
import { metaSchedRound } from "../modules/meta_sched/round.ts";
import { assertEquals, assertOk } from "./support/assert.ts";
import { addCluster, referenceQueues, roundRunner, submitJob } from "./support/sched_fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";

const log = moduleLogger("meta_sched");

const map = (entries: [number, number, number[]][]): GanttMap =>
  new Map(entries.map(([m, start, rids]) => [m, { start, rids }]));

Deno.test("gantt diff: only what changed, per moldable", () => {
  const old = map([[1, 100, [1, 2]], [2, 200, [3]], [3, 300, [4, 5]], [4, 400, [6]]]);
  const next = map([
    [1, 100, [1, 2]], // unchanged
    [2, 250, [3]], // start only
    [3, 300, [4, 6]], // resources only
    [5, 500, [7, 8]], // new
    // 4 gone
  ]);
  const d = diffGantt(old, next);
  assertEquals(d.full, false);
  assertEquals(d.predDeleted, [4]);
  assertEquals(d.predMolds, [2, 5]);
  assertEquals(d.predStarts, [250, 500]);
  assertEquals(d.resDeleted.sort(), [3, 4]);
  assertEquals([...d.resMolds], [3, 3, 5, 5]);
  assertEquals([...d.resIds], [4, 6, 7, 8]);
  assertOk(emptyDelta(diffGantt(next, map([...next].map(([m, e]) => [m, e.start, e.rids])))));
});

Deno.test("gantt diff: resource rows without a prediction are removed", () => {
  const old: GanttMap = new Map([[9, { start: -1, rids: [1, 2] }]]);
  const d = diffGantt(old, new Map());
  assertEquals(d.predDeleted, []);
  assertEquals(d.resDeleted, [9]);
  // The same moldable predicted again: its prediction is inserted, its rows rewritten.
  const again = diffGantt(old, map([[9, 10, [1, 2]]]));
  assertEquals(again.predMolds, [9]);
  assertEquals(again.resDeleted, []);
});

Deno.test("gantt diff: most rows changed means a full rewrite", () => {
  const old = map([[1, 0, [1, 2, 3]], [2, 0, [4]]]);
  const next = map([[1, 0, [5, 6, 7]], [2, 0, [4]]]);
  const d = diffGantt(old, next, 2);
  assertEquals(d.full, true);
  assertEquals(d.predMolds.sort(), [1, 2]);
  assertEquals([...d.resIds].sort(), [4, 5, 6, 7]);
  assertEquals(diffGantt(old, next).full, false); // below the default threshold
});

/** Every row of a Gantt table pair, sorted (predictions, resources). */
async function snapshot(db: TestDb, visu = false) {
  const p = visu ? "gantt_jobs_predictions_visu" : "gantt_jobs_predictions";
  const r = visu ? "gantt_jobs_resources_visu" : "gantt_jobs_resources";
  const preds = await db.sql.unsafe(
    `SELECT moldable_job_id AS m, start_time AS s FROM ${p} ORDER BY 1`,
  );
  const res = await db.sql.unsafe(
    `SELECT moldable_job_id AS m, resource_id AS r FROM ${r} ORDER BY 1, 2`,
  );
  return {
    preds: preds.map((x) => `${x.m}@${x.s}`),
    res: res.map((x) => `${x.m}:${x.r}`),
  };
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

Deno.test(
  "gantt by difference: each round leaves the tables a flush-and-rebuild round leaves, and _visu equal to them",
  async () => {
    await using db = await createTestDb();
    await referenceQueues(db.sql);
    await addCluster(db.sql, ["n1", "n2", "n3"], 4);
    const config = db.config.with({
      HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
      SCHEDULER_JOB_SECURITY_TIME: 60,
    });
    const notifier = new RecordingNotifier();
    const round = roundRunner(db.sql, config, log, notifier);
    const r = rng(7);
    let now = await dbNow(db.sql);
    for (let k = 0; k < 6; k++) {
      for (let i = 0; i < 6; i++) {
        await submitJob(db.sql, {
          resources: 1 + Math.floor(r() * 8),
          walltime: 60 + Math.floor(r() * 1200),
        });
      }
      await round(now);
      const incremental = await snapshot(db);
      assertEquals(await snapshot(db, true), incremental, `round ${k}: _visu`);
      // The same round from empty tables (OAR's flush): the same rows.
      await db.sql`TRUNCATE gantt_jobs_predictions, gantt_jobs_resources`;
      await round(now);
      assertEquals(await snapshot(db), incremental, `round ${k}: rebuilt from scratch`);
      assertEquals(await snapshot(db, true), incremental, `round ${k}: _visu after rebuild`);
      // Gantt rows of jobs gone: none.
      const stale = await db.sql`
        SELECT g.moldable_job_id FROM gantt_jobs_predictions g
        JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
        JOIN jobs j ON j.job_id = m.moldable_job_id
        WHERE j.state IN ('Terminated', 'Error')`;
      assertEquals(stale.length, 0);
      // Launched jobs run; some end early, which frees room for the waiting ones.
      await db.sql`UPDATE jobs SET state = 'Running' WHERE state = 'toLaunch'`;
      await db.sql`UPDATE jobs SET state = 'Terminated'
        WHERE state = 'Running' AND job_id % 2 = ${k % 2}`;
      now += 30 + Math.floor(r() * 300);
    }
  },
);

Deno.test("gantt by difference: a _visu copy that drifted is repaired", async () => {
  await using db = await createTestDb();
  await referenceQueues(db.sql);
  await addCluster(db.sql, ["n1"], 4);
  const config = db.config.with({ HIERARCHY_LABELS: "resource_id,network_address,cpu,core" });
  const notifier = new RecordingNotifier();
  const now = await dbNow(db.sql);
  const round = () => metaSchedRound({ sql: db.sql, config, log, notifier, now });
  for (let i = 0; i < 4; i++) await submitJob(db.sql, { resources: 3, walltime: 600 });
  await round();
  const good = await snapshot(db);
  assertEquals(await snapshot(db, true), good);
  // A round that died between the Gantt and its copy, or a hand edit: rows off by one.
  await db.sql`DELETE FROM gantt_jobs_resources_visu WHERE resource_id = (
    SELECT min(resource_id) FROM gantt_jobs_resources_visu)`;
  await db.sql`INSERT INTO gantt_jobs_resources_visu VALUES (424242, 1)`;
  await db.sql`UPDATE gantt_jobs_predictions_visu SET start_time = start_time + 1`;
  await db.sql`INSERT INTO gantt_jobs_predictions_visu VALUES (424242, 5)`;
  await round();
  assertEquals(await snapshot(db), good);
  assertEquals(await snapshot(db, true), good);
});
