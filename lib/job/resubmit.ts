/**
 * `resubmit_job` (docs/modules.md §12.2): a finished (or finishing) batch job is submitted again as
 * a new Waiting job with the same request — moldables, resource groups and descriptions, types,
 * dependencies, ssh keys — and `resubmit_job_id` pointing at the original. One transaction, the
 * original's row locked, so that a job is resubmitted at most once however many callers try.
 */
import type { Queryable } from "../db/client.ts";
import { inTransaction } from "./events.ts";
import type { Job } from "./jobs.ts";
import { ENDING_STATES, FINAL_STATES, stateIn } from "./states.ts";

export const ResubmitCode = {
  ok: 0,
  notAllowed: -1,
  notFinished: -2,
  noSuchJob: -3,
  notBatch: -4,
  sharedKeys: -5,
  alreadyResubmitted: -6,
} as const;
export type ResubmitCode = typeof ResubmitCode[keyof typeof ResubmitCode];

export interface ResubmitResult {
  code: ResubmitCode;
  message: string;
  /** The new job's id when code is ok. */
  newJobId: number | null;
}

const ADMINS: ReadonlySet<string> = new Set(["oar", "root"]);

/** `is_job_already_resubmitted`: how many jobs were resubmitted from this one. */
export async function resubmissionCount(sql: Queryable, jobId: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM jobs WHERE resubmit_job_id = ${jobId}`;
  return Number(row.n);
}

function refused(code: ResubmitCode, message: string): ResubmitResult {
  return { code, message, newJobId: null };
}

/** Resubmits `jobId` on behalf of `user` (the owner, oar or root). */
export async function resubmitJob(
  sql: Queryable,
  jobId: number,
  user: string,
): Promise<ResubmitResult> {
  return await inTransaction(sql, async (tx) => {
    const [job] = await tx<Job[]>`SELECT * FROM jobs WHERE job_id = ${jobId} FOR UPDATE`;
    if (!job) return refused(ResubmitCode.noSuchJob, `job ${jobId} does not exist`);
    if (user !== job.job_user && !ADMINS.has(user)) {
      return refused(ResubmitCode.notAllowed, `user ${user} cannot resubmit job ${jobId}`);
    }
    if (job.job_type !== "PASSIVE" || job.reservation !== "None") {
      return refused(ResubmitCode.notBatch, `job ${jobId} is interactive or a reservation`);
    }
    if (!stateIn(ENDING_STATES, job.state)) {
      return refused(ResubmitCode.notFinished, `job ${jobId} is ${job.state}, not finished`);
    }
    if (await resubmissionCount(tx, jobId) > 0) {
      return refused(ResubmitCode.alreadyResubmitted, `job ${jobId} was already resubmitted`);
    }
    // Reusing a job key another user's running job holds would let either reach the other.
    const [shared] = await tx<{ n: number }[]>`
      SELECT count(*)::int AS n
      FROM challenges c0
      JOIN challenges c ON c.ssh_public_key = c0.ssh_public_key AND c.job_id <> c0.job_id
      JOIN jobs j ON j.job_id = c.job_id
      WHERE c0.job_id = ${jobId} AND c0.ssh_public_key <> ''
        AND j.job_user <> ${job.job_user} AND j.state NOT IN ${tx(FINAL_STATES)}`;
    if (Number(shared.n) > 0) {
      return refused(ResubmitCode.sharedKeys, `job ${jobId}'s ssh key is used by another user`);
    }
    const [{ job_id: created, now }] = await tx<{ job_id: number; now: number }[]>`
      INSERT INTO jobs (array_id, array_index, initial_request, job_name, job_env, job_type,
        info_type, state, reservation, message, scheduler_info, job_user, project, job_group,
        command, exit_code, queue_name, properties, launching_directory, submission_time,
        start_time, stop_time, file_id, accounted, notify, assigned_moldable_job, checkpoint,
        checkpoint_signal, stdout_file, stderr_file, resubmit_job_id, suspended, last_karma)
      SELECT array_id, array_index, initial_request, job_name, job_env, job_type,
        info_type, 'Waiting', reservation, '', '', job_user, project, job_group,
        command, NULL, queue_name, properties, launching_directory,
        EXTRACT(EPOCH FROM now())::int, 0, 0, file_id, 'NO', notify, 0, checkpoint,
        checkpoint_signal, stdout_file, stderr_file, job_id, 'NO', last_karma
      FROM jobs WHERE job_id = ${jobId}
      RETURNING job_id, submission_time AS now`;
    const newId = Number(created);
    await tx`
      INSERT INTO challenges (job_id, challenge, ssh_private_key, ssh_public_key)
      SELECT ${newId}, ${randomChallenge()}, COALESCE(c.ssh_private_key, ''),
        COALESCE(c.ssh_public_key, '')
      FROM (SELECT 1) AS one LEFT JOIN challenges c ON c.job_id = ${jobId}`;
    await copyRequest(tx, jobId, newId);
    await tx`
      INSERT INTO job_types (job_id, type, types_index)
      SELECT ${newId}, type, 'CURRENT' FROM job_types WHERE job_id = ${jobId}
      ORDER BY job_type_id`;
    // The new job needs what the old one needed, and whoever waits for the old one now waits
    // for the new one.
    await tx`
      INSERT INTO job_dependencies (job_id, job_id_required, min_start_shift, max_start_shift,
        job_dependency_index)
      SELECT ${newId}, job_id_required, min_start_shift, max_start_shift, 'CURRENT'
      FROM job_dependencies WHERE job_id = ${jobId}
      ON CONFLICT DO NOTHING`;
    await tx`
      UPDATE job_dependencies SET job_id_required = ${newId}
      WHERE job_id_required = ${jobId} AND job_dependency_index = 'CURRENT'
        AND NOT EXISTS (SELECT 1 FROM job_dependencies d2
                        WHERE d2.job_id = job_dependencies.job_id
                          AND d2.job_id_required = ${newId})`;
    await tx`
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      VALUES (${newId}, 'Waiting', ${now}, 0)`;
    return {
      code: ResubmitCode.ok,
      message: `job ${jobId} resubmitted as ${newId}`,
      newJobId: newId,
    };
  });
}

/** Copies moldables, their resource groups and descriptions, as CURRENT rows of the new job. */
async function copyRequest(tx: Queryable, oldId: number, newId: number): Promise<void> {
  const molds = await tx<{ moldable_id: number; moldable_walltime: number }[]>`
    SELECT moldable_id, moldable_walltime FROM moldable_job_descriptions
    WHERE moldable_job_id = ${oldId} ORDER BY moldable_id`;
  for (const m of molds) {
    const [{ moldable_id: newMold }] = await tx<{ moldable_id: number }[]>`
      INSERT INTO moldable_job_descriptions (moldable_job_id, moldable_walltime, moldable_index)
      VALUES (${newId}, ${m.moldable_walltime}, 'CURRENT') RETURNING moldable_id`;
    const groups = await tx<{ res_group_id: number; res_group_property: string | null }[]>`
      SELECT res_group_id, res_group_property FROM job_resource_groups
      WHERE res_group_moldable_id = ${m.moldable_id} ORDER BY res_group_id`;
    for (const g of groups) {
      const [{ res_group_id: newGroup }] = await tx<{ res_group_id: number }[]>`
        INSERT INTO job_resource_groups (res_group_moldable_id, res_group_property,
          res_group_index)
        VALUES (${newMold}, ${g.res_group_property}, 'CURRENT') RETURNING res_group_id`;
      await tx`
        INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
          res_job_value, res_job_order, res_job_index)
        SELECT ${newGroup}, res_job_resource_type, res_job_value, res_job_order, 'CURRENT'
        FROM job_resource_descriptions WHERE res_job_group_id = ${g.res_group_id}`;
    }
  }
}

/** A fresh challenge: what oarexec must echo back to prove it runs the job. */
function randomChallenge(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
