/**
 * Meta-scheduler benchmark: for 1,000, 10,000 and 50,000 waiting jobs on ~1,000 (1,008) and 10,000
 * cores (16-core hosts; mixed sizes, shapes and walltimes), on a scratch database:
 *   - the scheduling step alone (Kamelot on the slot set, in memory),
 *   - a whole round (metaSchedRound: Gantt rebuild, scheduling, bulk writes, launches),
 *   - a second round (steady state: the same jobs re-planned, nothing new to launch),
 * and the peak memory seen (Deno.memoryUsage). Run: `deno run -A bench/sched_bench.ts`
 * (OAR_TEST_DATABASE_URL selects the PostgreSQL server, as for the tests;
 * OAR_BENCH_STALE_STATS=1 leaves the tables' statistics as they were before the jobs came).
 */
import { connectUrl, dbNow } from "../lib/db/client.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { metaSchedRound, ROUND_POOL_SIZE } from "../modules/meta_sched/round.ts";
import { createTestDb } from "../tests/support/testdb.ts";
import { CORES_PER_HOST, setUpQueue } from "./sched_workload.ts";

let peakRss = 0, peakHeap = 0;
function sample() {
  const m = Deno.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
}

function roundPool(url: string) {
  const sql = connectUrl(url, { max: ROUND_POOL_SIZE, applicationName: "oar-meta_sched" });
  return { sql, [Symbol.asyncDispose]: () => sql.end() };
}

async function scenario(jobs: number, cores: number) {
  await using db = await createTestDb();
  // OAR_BENCH_STALE_STATS=1: no ANALYZE, as just after a burst of submissions, before
  // autovacuum has looked at the tables (plans must not depend on fresh statistics).
  const config = await setUpQueue(db, jobs, cores, Deno.env.get("OAR_BENCH_STALE_STATS") !== "1");
  const notifier = new RecordingNotifier();
  const log = moduleLogger("meta_sched");
  const now = await dbNow(db.sql);
  // The rounds get a pool of their own, the size meta_sched gives them.
  await using pool = roundPool(db.url);
  const sql = pool.sql;
  sample();
  let t = performance.now();
  const r1 = await metaSchedRound({ sql, config, log, notifier, now });
  const first = performance.now() - t;
  sample();
  t = performance.now();
  const r2 = await metaSchedRound({ sql, config, log, notifier, now: now + 1 });
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
    for (const jobs of [1000, 10000, 50000]) await scenario(jobs, cores);
  }
}
console.log(
  `peak memory: rss ${(peakRss / 2 ** 20).toFixed(0)} MiB, heap ${
    (peakHeap / 2 ** 20).toFixed(0)
  } MiB`,
);
