/**
 * Small database fixtures: a job as the meta-scheduler leaves it (moldable, types, challenge,
 * assignment, first state log) and a set of hosts' resources. Values are always parameters, so
 * fixtures can carry hostile user strings too.
 */
import type { Queryable } from "../../lib/db/client.ts";
import { inTransaction } from "../../lib/job/events.ts";
import type { JobState } from "../../lib/job/states.ts";
import { STATE_NUM } from "../../lib/resource/resources.ts";

export interface JobFixture {
  user?: string;
  state?: JobState;
  command?: string;
  queue?: string;
  /** Seconds; the moldable's walltime. */
  walltime?: number;
  name?: string;
  /** Resource ids assigned (index CURRENT) to the job's moldable, which becomes assigned. */
  resources?: number[];
  types?: string[];
  /** Defaults to now for states where the job has started, else 0. */
  startTime?: number;
  suspended?: boolean;
}

const STARTED: ReadonlySet<string> = new Set([
  "Launching",
  "Running",
  "Suspended",
  "Resuming",
  "Finishing",
]);

/** Inserts a job; returns its id and its (only) moldable's id. */
export async function insertJob(
  sql: Queryable,
  f: JobFixture = {},
): Promise<{ jobId: number; moldableId: number }> {
  const state = f.state ?? "Waiting";
  const resources = f.resources ?? [];
  return await inTransaction(sql, async (tx) => {
    const [{ now }] = await tx<{ now: number }[]>`SELECT EXTRACT(EPOCH FROM now())::int AS now`;
    const start = f.startTime ?? (STARTED.has(state) ? now : 0);
    const [{ job_id }] = await tx<{ job_id: number }[]>`
      INSERT INTO jobs (job_name, job_type, state, job_user, command, queue_name,
        launching_directory, submission_time, start_time, checkpoint_signal, suspended,
        stdout_file, stderr_file)
      VALUES (${f.name ?? null}, 'PASSIVE', ${state}, ${f.user ?? "alice"},
        ${f.command ?? "sleep 60"}, ${f.queue ?? "default"}, '/tmp', ${now}, ${start}, 12,
        ${f.suspended ? "YES" : "NO"}, 'OAR.%jobid%.stdout', 'OAR.%jobid%.stderr')
      RETURNING job_id`;
    const jobId = Number(job_id);
    const [{ moldable_id }] = await tx<{ moldable_id: number }[]>`
      INSERT INTO moldable_job_descriptions (moldable_job_id, moldable_walltime)
      VALUES (${jobId}, ${f.walltime ?? 3600}) RETURNING moldable_id`;
    const moldableId = Number(moldable_id);
    if (resources.length > 0) {
      await tx`UPDATE jobs SET assigned_moldable_job = ${moldableId} WHERE job_id = ${jobId}`;
      await tx`
        INSERT INTO assigned_resources (moldable_job_id, resource_id, assigned_resource_index)
        SELECT ${moldableId}, rid, 'CURRENT' FROM unnest(${resources}::int[]) AS rid`;
    }
    if (f.types?.length) {
      await tx`
        INSERT INTO job_types (job_id, type, types_index)
        SELECT ${jobId}, t, 'CURRENT' FROM unnest(${f.types}::text[]) AS t`;
    }
    await tx`
      INSERT INTO challenges (job_id, challenge, ssh_private_key, ssh_public_key)
      VALUES (${jobId}, ${crypto.randomUUID()}, '', '')`;
    await tx`
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      VALUES (${jobId}, ${state}, ${now}, 0)`;
    return { jobId, moldableId };
  });
}

/**
 * `perHost` Alive resources on each host (with their first state log); returns the ids,
 * host by host in the order given.
 */
export async function insertResources(
  sql: Queryable,
  hosts: string[],
  perHost: number,
): Promise<number[]> {
  const addresses = hosts.flatMap((h) => Array<string>(perHost).fill(h));
  if (addresses.length === 0) return [];
  const rows = await sql<{ resource_id: number }[]>`
    WITH r AS (
      INSERT INTO resources (network_address, type, state, state_num)
      SELECT a, 'default', 'Alive', ${STATE_NUM.Alive}
      FROM unnest(${addresses}::text[]) WITH ORDINALITY AS x(a, n) ORDER BY n
      RETURNING resource_id
    ), l AS (
      INSERT INTO resource_logs (resource_id, attribute, value, date_start, date_stop,
        finaud_decision)
      SELECT resource_id, 'state', 'Alive', EXTRACT(EPOCH FROM now())::int, 0, 'NO' FROM r
    )
    SELECT resource_id FROM r ORDER BY resource_id`;
  return rows.map((r) => Number(r.resource_id));
}
