/**
 * The synthetic queue of the scheduler benchmarks (bench:sched, bench:kamelot): waiting jobs of
 * mixed sizes, shapes and walltimes, inserted as oarsub would, on 16-core hosts.
 */
import { Config } from "../lib/runtime/config.ts";
import type { Sql } from "../lib/db/client.ts";
import { addCluster, referenceQueues } from "../tests/support/sched_fixtures.ts";
import type { TestDb } from "../tests/support/testdb.ts";

export const CORES_PER_HOST = 16;

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

/**
 * The reference queues, `cores` cores on 16-core hosts and `jobs` waiting jobs in `db`; returns
 * the configuration the scheduler runs with (hierarchy resource_id, host, cpu, core).
 */
export async function setUpQueue(
  db: TestDb,
  jobs: number,
  cores: number,
  analyze = true,
): Promise<Config> {
  await referenceQueues(db.sql);
  const hosts = cores / CORES_PER_HOST;
  await addCluster(db.sql, Array.from({ length: hosts }, (_, i) => `node${i + 1}`), CORES_PER_HOST);
  await insertJobs(db.sql, jobs, hosts);
  if (analyze) await db.sql`ANALYZE`;
  return new Config({
    ...Object.fromEntries(db.config.entries()),
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
    MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND: Math.max(jobs, 1000),
    LOG_LEVEL: 1,
  });
}
