/**
 * Meta-scheduler benchmark: for 1,000 and 10,000 waiting jobs on ~1,000 (1,008) and 10,000
 * cores (16-core hosts; mixed sizes, shapes and walltimes), on a scratch database:
 *   - the scheduling step alone (Kamelot on the slot set, in memory),
 *   - a whole round (metaSchedRound: Gantt rebuild, scheduling, bulk writes, launches),
 *   - a second round (steady state: the same jobs re-planned, nothing new to launch),
 * and the peak memory seen (Deno.memoryUsage). Run: `deno run -A bench/sched_bench.ts`
 * (OAR_TEST_DATABASE_URL selects the PostgreSQL server, as for the tests;
 * OAR_BENCH_STALE_STATS=1 leaves the tables' statistics as they were before the jobs came).
 */
import { Config } from "../lib/config.ts";
import { dbNow, type Sql } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/log.ts";
import { RecordingNotifier } from "../lib/notifier.ts";
import { metaSchedRound } from "../lib/scheduler/round.ts";
import { addCluster, referenceQueues } from "../tests/support/sched_fixtures.ts";
import { createTestDb } from "../tests/support/testdb.ts";

const CORES_PER_HOST = 16;
let peakRss = 0, peakHeap = 0;
function sample() {
  const m = Deno.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
}

/** Inserts `n` waiting jobs as oarsub would, set-based (one statement per table). */
async function insertJobs(sql: Sql, n: number, hosts: number): Promise<void> {
  const sizes = [1, 1, 2, 4, 4, 8, 16, 32, 64];
  const walltimes = [600, 1800, 3600, 7200, 14400];
  const labels: string[] = [], values: number[] = [], orders: number[] = [], walls: number[] = [];
  const jobOf: number[] = [];
  for (let i = 0; i < n; i++) {
    walls.push(walltimes[(i * 7) % walltimes.length]);
    if (i % 5 === 4) {
      // /network_address=k/core=c
      jobOf.push(i, i);
      labels.push("network_address", "core");
      values.push(1 + (i % Math.min(4, hosts)), 1 + (i % CORES_PER_HOST));
      orders.push(0, 1);
    } else {
      jobOf.push(i);
      labels.push("resource_id");
      values.push(sizes[(i * 13) % sizes.length]);
      orders.push(0);
    }
  }
  await sql.begin(async (tx) => {
    const [{ now }] = await tx`SELECT EXTRACT(EPOCH FROM now())::int AS now`;
    const jobs = await tx<{ job_id: number }[]>`
      INSERT INTO jobs (job_type, state, reservation, job_user, project, command, queue_name,
        launching_directory, submission_time, checkpoint_signal)
      SELECT 'PASSIVE', 'Waiting', 'None', 'u' || (g % 17), 'default', 'sleep 1', 'default',
        '/tmp', ${now}, 12
      FROM generate_series(1, ${n}) g ORDER BY g
      RETURNING job_id`;
    const ids = jobs.map((j) => Number(j.job_id)).sort((a, b) => a - b);
    const molds = await tx<{ moldable_id: number; moldable_job_id: number }[]>`
      INSERT INTO moldable_job_descriptions (moldable_job_id, moldable_walltime)
      SELECT * FROM unnest(${ids}::int[], ${walls}::int[])
      RETURNING moldable_id, moldable_job_id`;
    const moldOf = new Map(molds.map((m) => [Number(m.moldable_job_id), Number(m.moldable_id)]));
    const groups = await tx<{ res_group_id: number; res_group_moldable_id: number }[]>`
      INSERT INTO job_resource_groups (res_group_moldable_id, res_group_property)
      SELECT m, NULL FROM unnest(${ids.map((id) => moldOf.get(id)!)}::int[]) AS m
      RETURNING res_group_id, res_group_moldable_id`;
    const groupOf = new Map(
      groups.map((g) => [Number(g.res_group_moldable_id), Number(g.res_group_id)]),
    );
    const gids = jobOf.map((i) => groupOf.get(moldOf.get(ids[i])!)!);
    await tx`
      INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
        res_job_value, res_job_order)
      SELECT * FROM unnest(${gids}::int[], ${labels}::text[], ${values}::int[], ${orders}::int[])`;
    await tx`
      INSERT INTO job_state_logs (job_id, job_state, date_start)
      SELECT id, 'Waiting', ${now} FROM unnest(${ids}::int[]) AS id`;
  });
}

async function scenario(jobs: number, cores: number) {
  await using db = await createTestDb();
  await referenceQueues(db.sql);
  const hosts = cores / CORES_PER_HOST;
  await addCluster(db.sql, Array.from({ length: hosts }, (_, i) => `node${i + 1}`), CORES_PER_HOST);
  await insertJobs(db.sql, jobs, hosts);
  // OAR_BENCH_STALE_STATS=1: no ANALYZE, as just after a burst of submissions, before
  // autovacuum has looked at the tables (plans must not depend on fresh statistics).
  if (Deno.env.get("OAR_BENCH_STALE_STATS") !== "1") await db.sql`ANALYZE`;
  const config = new Config({
    ...Object.fromEntries(db.config.entries()),
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
    MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND: Math.max(jobs, 1000),
    LOG_LEVEL: 1,
  });
  const notifier = new RecordingNotifier();
  const log = moduleLogger("meta_sched");
  const now = await dbNow(db.sql);
  sample();
  let t = performance.now();
  const r1 = await metaSchedRound({ sql: db.sql, config, log, notifier, now });
  const first = performance.now() - t;
  sample();
  t = performance.now();
  const r2 = await metaSchedRound({ sql: db.sql, config, log, notifier, now: now + 1 });
  const second = performance.now() - t;
  sample();
  const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM gantt_jobs_predictions`;
  const fmt = (x: number) => `${x.toFixed(0).padStart(5)} ms`;
  console.log(
    `${String(jobs).padStart(6)} jobs on ${String(cores).padStart(6)} cores: ` +
      `schedule ${fmt(r1.timings.schedule ?? 0)} | round ${fmt(first)} ` +
      `(${r1.launched.length} launched) | next round ${fmt(second)} ` +
      `(schedule ${fmt(r2.timings.schedule ?? 0)}) | ${n} predictions, ${r1.skipped.size} skipped`,
  );
  console.log(
    "    round 1 phases: " +
      Object.entries(r1.timings).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", "),
  );
  console.log(
    "    round 2 phases: " +
      Object.entries(r2.timings).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", "),
  );
}

if (Deno.args.length === 2) {
  // One scenario: `deno run -A bench/sched_bench.ts <jobs> <cores>`.
  await scenario(
    Number(Deno.args[0]),
    Math.ceil(Number(Deno.args[1]) / CORES_PER_HOST) * CORES_PER_HOST,
  );
} else {
  for (const cores of [1008, 10000]) {
    for (const jobs of [1000, 10000]) await scenario(jobs, cores);
  }
}
console.log(
  `peak memory: rss ${(peakRss / 2 ** 20).toFixed(0)} MiB, heap ${
    (peakHeap / 2 ** 20).toFixed(0)
  } MiB`,
);
