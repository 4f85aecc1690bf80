/**
 * Scheduler fixtures: jobs written exactly as oarsub writes them (jobs row with queue and
 * properties, moldables, resource groups and descriptions, types, dependencies, challenge,
 * first state log), and clusters of resources with hierarchy columns.
 */
import type { Config } from "../../lib/runtime/config.ts";
import type { Queryable, Sql } from "../../lib/db/client.ts";
import { type Logger, moduleLogger } from "../../lib/runtime/log.ts";
import { type Notifier, RecordingNotifier } from "../../lib/transport/notifier.ts";
import { metaSchedRound, type RoundReport } from "../../modules/meta_sched/round.ts";
import { inTransaction } from "../../lib/job/events.ts";
import type { JobState } from "../../lib/job/states.ts";
import { STATE_NUM } from "../../lib/resource/resources.ts";

export interface GroupSpec {
  /** res_group_property (null: none, i.e. type = 'default'). */
  property?: string | null;
  /** Top-down (label, count); -1 ALL, -2 BEST. */
  levels: [string, number][];
}

export interface MoldableSpec {
  walltime: number;
  groups: GroupSpec[];
}

export interface SubmitSpec {
  user?: string;
  /** jobs.project ('default' when absent). */
  project?: string;
  queue?: string;
  properties?: string | null;
  moldables?: MoldableSpec[];
  /** Shorthand for one moldable `/resource_id=n`. */
  resources?: number;
  walltime?: number;
  types?: string[];
  jobType?: "PASSIVE" | "INTERACTIVE";
  infoType?: string | null;
  /** An advance reservation starting then (reservation = toSchedule). */
  reservationStart?: number;
  dependencies?: number[];
  state?: JobState;
  name?: string | null;
}

/** Inserts a job as oarsub does; returns its id and its moldables' ids. */
export async function submitJob(
  sql: Queryable,
  spec: SubmitSpec = {},
): Promise<{ jobId: number; moldableIds: number[] }> {
  const moldables = spec.moldables ??
    [{
      walltime: spec.walltime ?? 3600,
      groups: [{ levels: [["resource_id", spec.resources ?? 1]] }],
    }];
  return await inTransaction(sql, async (tx) => {
    const [{ now }] = await tx<{ now: number }[]>`SELECT EXTRACT(EPOCH FROM now())::int AS now`;
    const ar = spec.reservationStart !== undefined;
    const state = spec.state ?? "Waiting";
    const [{ job_id }] = await tx<{ job_id: number }[]>`
      INSERT INTO jobs (job_name, job_type, info_type, state, reservation, message, job_user,
        project, command, queue_name, properties, launching_directory, submission_time,
        start_time, checkpoint_signal, stdout_file, stderr_file, initial_request)
      VALUES (${spec.name ?? null}, ${spec.jobType ?? "PASSIVE"}, ${spec.infoType ?? null},
        ${state}, ${ar ? "toSchedule" : "None"}, '', ${spec.user ?? "alice"}, ${
      spec.project ?? "default"
    },
        'sleep 60', ${spec.queue ?? "default"}, ${spec.properties ?? null}, '/tmp', ${now},
        ${ar ? spec.reservationStart! : 0}, 12, 'OAR.%jobid%.stdout', 'OAR.%jobid%.stderr',
        'oarsub')
      RETURNING job_id`;
    const jobId = Number(job_id);
    const moldableIds: number[] = [];
    for (const m of moldables) {
      const [{ moldable_id }] = await tx<{ moldable_id: number }[]>`
        INSERT INTO moldable_job_descriptions (moldable_job_id, moldable_walltime)
        VALUES (${jobId}, ${m.walltime}) RETURNING moldable_id`;
      moldableIds.push(Number(moldable_id));
      for (const g of m.groups) {
        const [{ res_group_id }] = await tx<{ res_group_id: number }[]>`
          INSERT INTO job_resource_groups (res_group_moldable_id, res_group_property)
          VALUES (${moldable_id}, ${g.property ?? null}) RETURNING res_group_id`;
        let order = 0;
        for (const [label, value] of g.levels) {
          await tx`
            INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
              res_job_value, res_job_order)
            VALUES (${res_group_id}, ${label}, ${value}, ${order++})`;
        }
      }
    }
    for (const t of spec.types ?? []) {
      await tx`INSERT INTO job_types (job_id, type) VALUES (${jobId}, ${t})`;
    }
    for (const d of spec.dependencies ?? []) {
      await tx`INSERT INTO job_dependencies (job_id, job_id_required) VALUES (${jobId}, ${d})`;
    }
    await tx`
      INSERT INTO challenges (job_id, challenge, ssh_private_key, ssh_public_key)
      VALUES (${jobId}, ${crypto.randomUUID()}, '', '')`;
    await tx`
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      VALUES (${jobId}, ${state}, ${now}, 0)`;
    return { jobId, moldableIds };
  });
}

/**
 * Resources host by host, `cores` each, with columns `cpu` (one per host) and `core` (global
 * numbers) added to the table when missing. Returns the ids in insertion order.
 */
export async function addCluster(
  sql: Queryable,
  hosts: string[],
  cores: number,
  opts: { state?: "Alive" | "Absent" | "Suspected" | "Dead"; firstCore?: number } = {},
): Promise<number[]> {
  await sql`ALTER TABLE resources ADD COLUMN IF NOT EXISTS cpu integer`;
  await sql`ALTER TABLE resources ADD COLUMN IF NOT EXISTS core integer`;
  const [{ base }] = await sql<{ base: number }[]>`
    SELECT COALESCE(MAX(core), 0)::int AS base FROM resources`;
  const addr: string[] = [], cpu: number[] = [], core: number[] = [];
  const state = opts.state ?? "Alive";
  let c = opts.firstCore ?? base;
  hosts.forEach((h, i) => {
    for (let k = 0; k < cores; k++) {
      addr.push(h);
      cpu.push(base + i + 1);
      core.push(++c);
    }
  });
  const rows = await sql<{ resource_id: number }[]>`
    INSERT INTO resources (network_address, type, state, state_num, cpu, core)
    SELECT a, 'default', ${state}, ${STATE_NUM[state]}, p, c
    FROM unnest(${addr}::text[], ${cpu}::int[], ${core}::int[]) WITH ORDINALITY AS x(a, p, c, n)
    ORDER BY n
    RETURNING resource_id`;
  return rows.map((r) => Number(r.resource_id)).sort((a, b) => a - b);
}

/** Queues as in the reference's scheduler tests: default prio 3, besteffort prio 0. */
export async function referenceQueues(sql: Queryable): Promise<void> {
  await sql`DELETE FROM queues`;
  await sql`
    INSERT INTO queues (queue_name, priority, scheduler_policy, state) VALUES
      ('default', 3, 'kamelot', 'Active'), ('besteffort', 0, 'kamelot', 'Active')`;
}

/**
 * Marks a job as running since `start` on `rids` (assigned moldable, assigned resources),
 * the way bipbip leaves it.
 */
export async function makeRunning(
  sql: Queryable,
  jobId: number,
  moldableId: number,
  rids: number[],
  start: number,
  state: JobState = "Running",
): Promise<void> {
  await sql`UPDATE jobs SET state = ${state}, start_time = ${start},
    assigned_moldable_job = ${moldableId} WHERE job_id = ${jobId}`;
  await sql`
    INSERT INTO assigned_resources (moldable_job_id, resource_id, assigned_resource_index)
    SELECT ${moldableId}, r, 'CURRENT' FROM unnest(${rids}::int[]) AS r`;
}

/** One accounting row (a window of consumption), as the accounting module writes it. */
export async function addAccounting(
  sql: Queryable,
  row: {
    start: number;
    stop: number;
    user: string;
    project?: string;
    queue?: string;
    type: "ASKED" | "USED";
    consumption: number;
  },
): Promise<void> {
  await sql`
    INSERT INTO accounting (window_start, window_stop, accounting_user, accounting_project,
      queue_name, consumption_type, consumption)
    VALUES (${row.start}, ${row.stop}, ${row.user}, ${row.project ?? "default"},
      ${row.queue ?? "default"}, ${row.type}, ${row.consumption})`;
}

/**
 * Runs meta-scheduler rounds in-process on `sql` under `base`, plus the keys a round adds;
 * interactive oarsubs always answer.
 */
export function roundRunner(
  sql: Sql,
  base: Config,
  log: Logger = moduleLogger("meta_sched"),
  notifier: Notifier = new RecordingNotifier(),
): (now: number, extra?: Record<string, string | number>) => Promise<RoundReport> {
  return (now, extra = {}) =>
    metaSchedRound({
      sql,
      config: base.with(extra),
      log,
      notifier,
      now,
      oarsub: () => Promise.resolve(true),
    });
}

/** The planned start of a moldable (gantt_jobs_predictions), or null when it has none. */
export async function plannedStart(sql: Queryable, moldableId: number): Promise<number | null> {
  const rows = await sql<{ start_time: number }[]>`
    SELECT start_time FROM gantt_jobs_predictions WHERE moldable_job_id = ${moldableId}`;
  return rows.length ? rows[0].start_time : null;
}

/** A moldable's planned start and resources (the Gantt), or null when it has none. */
export async function plannedPlacement(
  sql: Queryable,
  moldableId: number,
): Promise<{ start: number; rids: number[] } | null> {
  const start = await plannedStart(sql, moldableId);
  if (start === null) return null;
  const res = await sql<{ resource_id: number }[]>`
    SELECT resource_id FROM gantt_jobs_resources WHERE moldable_job_id = ${moldableId}
    ORDER BY resource_id`;
  return { start, rids: res.map((r) => Number(r.resource_id)) };
}
