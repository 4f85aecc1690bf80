/**
 * Steps 6–8, once the round's transaction is committed: the jobs whose start has come (or comes
 * within the besteffort kill delay). Besteffort jobs in their way are killed (or asked to
 * checkpoint first) and nothing is launched this round; otherwise the jobs due now are launched.
 */
import type { Queryable, Sql } from "../../../lib/db/client.ts";
import { addEvent, inTransaction } from "../../../lib/job/events.ts";
import { fragJob, FragResult } from "../../../lib/job/frag.ts";
import { setJobMessage, setJobsState } from "../../../lib/job/jobs.ts";
import { firstCheckpointDate, requestCheckpoint } from "../../../lib/job/checkpoint.ts";
import type { Logger } from "../../../lib/runtime/log.ts";
import type { Notifier } from "../../../lib/transport/notifier.ts";
import { setGanttStart } from "../kamelot/gantt.ts";
import { RESOURCE_HOLDING_STATES } from "../../../lib/job/states.ts";
import { overlaps } from "../kamelot/intervals.ts";
import { durationText } from "../kamelot/requests.ts";
import { toOrderedIds } from "../kamelot/resource_set.ts";
import { timesharingKey } from "../kamelot/timesharing.ts";
import { noJit, type RoundPlan, type RoundState } from "./round_state.ts";

export async function launchDueJobs(round: RoundState, plan: RoundPlan): Promise<void> {
  const { sql, config, log, notifier, now } = round;
  const { rs } = plan;
  const candidates = await inTransaction(sql, async (tx) => {
    await noJit(tx);
    return await tx<
      {
        job_id: number;
        moldable_id: number;
        start: number;
        reservation: string;
        job_start: number;
        walltime: number;
        message: string;
        job_user: string;
        job_name: string | null;
        types: string[] | null;
        rids: number[];
      }[]
    >`
    SELECT j.job_id, g.moldable_job_id AS moldable_id, g.start_time AS start, j.reservation,
      j.start_time AS job_start, m.moldable_walltime AS walltime, j.message, j.job_user,
      j.job_name,
      (SELECT array_agg(t.type::text) FROM job_types t
       WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT') AS types,
      (SELECT array_agg(r.resource_id ORDER BY r.resource_id) FROM gantt_jobs_resources r
       WHERE r.moldable_job_id = g.moldable_job_id) AS rids
    FROM gantt_jobs_predictions g
    JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
    JOIN jobs j ON j.job_id = m.moldable_job_id
    WHERE j.state = 'Waiting' AND g.start_time <= ${now + round.killDelay}
      AND NOT EXISTS (SELECT 1 FROM frag_jobs f WHERE f.frag_id_job = j.job_id)
    ORDER BY g.start_time, j.job_id`;
  });
  const besteffort = await runningBesteffort(sql);
  /**
   * Whether a besteffort job with `checkpoint` seconds must be left to checkpoint rather
   * than killed now: it is asked (once), and killed once that many seconds have passed
   * since it was first asked (by whoever: sarko's walltime checkpoint counts too).
   */
  const checkpointFirst = async (be: { jobId: number; checkpoint: number }, t: number) => {
    if (!round.signaller) {
      log.warn("besteffort job {id} should checkpoint first, but no signaller: killed", {
        id: be.jobId,
      });
      return false;
    }
    const first = await firstCheckpointDate(sql, be.jobId);
    if (first !== null && t > first + be.checkpoint) return false;
    if (first === null) {
      await requestCheckpoint(
        { sql, config, log, signaller: round.signaller },
        be.jobId,
        "meta_sched",
      );
    }
    return true;
  };
  const toKill = new Set<number>();
  for (const c of candidates) {
    const need = toOrderedIds(rs, c.rids ?? []);
    const ts = timesharingKey(c.types ?? [], c.job_user, c.job_name);
    for (const be of besteffort) {
      // A besteffort job timesharing-compatible with the newcomer may stay beside it.
      if (ts !== null && be.timesharing === ts) continue;
      if (be.jobId !== Number(c.job_id) && overlaps(need, toOrderedIds(rs, be.rids))) {
        toKill.add(be.jobId);
      }
    }
  }
  if (toKill.size > 0) {
    const checkpointing: number[] = [];
    for (const id of [...toKill].sort((a, b) => a - b)) {
      const be = besteffort.find((b) => b.jobId === id)!;
      if (be.checkpoint > 0 && await checkpointFirst(be, now)) {
        checkpointing.push(id);
        continue;
      }
      const r = await fragJob(sql, id, "oar");
      if (r === FragResult.ok) {
        await addEvent(sql, {
          type: "BESTEFFORT_KILL",
          jobId: id,
          description: `kill the besteffort job ${id}`,
        });
        round.fragged.push(id);
      }
    }
    log.info("besteffort jobs to kill: {ids}; nothing launched this round", {
      ids: [...toKill].join(","),
    });
    if (checkpointing.length > 0) {
      log.info("besteffort jobs checkpointing before they are killed: {ids}", {
        ids: checkpointing.join(","),
      });
    }
    notifier.almighty("ChState");
    round.exitCode = 2;
  } else {
    const launchable = candidates.filter((c) =>
      c.start <= now && !overlaps(toOrderedIds(rs, c.rids ?? []), rs.absent) &&
      (c.rids ?? []).length > 0
    );
    round.launched.push(...await launchJobs(sql, notifier, launchable, now, log));
  }
}

/** Besteffort jobs holding resources now. */
async function runningBesteffort(
  sql: Queryable,
): Promise<
  { jobId: number; rids: number[]; timesharing: string | null; checkpoint: number }[]
> {
  const rows = await sql<
    {
      job_id: number;
      job_user: string;
      job_name: string | null;
      checkpoint: number;
      types: string[] | null;
      rids: number[] | null;
    }[]
  >`
    SELECT j.job_id, j.job_user, j.job_name, j.checkpoint,
      (SELECT array_agg(t.type::text) FROM job_types t
       WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT') AS types,
      (SELECT array_agg(ar.resource_id) FROM assigned_resources ar
       WHERE ar.moldable_job_id = j.assigned_moldable_job
         AND ar.assigned_resource_index = 'CURRENT') AS rids
    FROM jobs j
    WHERE j.state IN ${sql(RESOURCE_HOLDING_STATES)}
      AND (j.queue_name = 'besteffort' OR EXISTS (
        SELECT 1 FROM job_types t WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT'
          AND t.type = 'besteffort'))`;
  return rows.map((r) => ({
    jobId: Number(r.job_id),
    rids: (r.rids ?? []).map(Number),
    timesharing: timesharingKey(r.types ?? [], r.job_user, r.job_name),
    checkpoint: Number(r.checkpoint ?? 0),
  }));
}

/**
 * Step 8: start_time, assigned moldable and assigned resources in one transaction (bulk), then
 * the jobs to toLaunch through setJobsState, then OARRUN to bipbip_commander once committed.
 * A reservation starting late loses the delay from its walltime (its end does not move).
 */
async function launchJobs(
  sql: Sql,
  notifier: Notifier,
  jobs: readonly {
    job_id: number;
    moldable_id: number;
    reservation: string;
    job_start: number;
    walltime: number;
    message: string;
  }[],
  now: number,
  log: Logger,
): Promise<number[]> {
  if (jobs.length === 0) return [];
  const ids = jobs.map((j) => Number(j.job_id));
  const molds = jobs.map((j) => Number(j.moldable_id));
  const assigned = await inTransaction(sql, async (tx) => {
    await noJit(tx);
    for (const j of jobs) {
      const delay = now - j.job_start;
      if (j.reservation !== "Scheduled" || delay <= 0) continue;
      const walltime = Math.max(1, j.walltime - delay);
      await tx`UPDATE moldable_job_descriptions SET moldable_walltime = ${walltime}
        WHERE moldable_id = ${j.moldable_id}`;
      await setGanttStart(tx, Number(j.moldable_id), now);
      await addEvent(tx, {
        type: "REDUCE_RESERVATION_WALLTIME",
        jobId: Number(j.job_id),
        description: `Change walltime from ${j.walltime} to ${walltime}`,
      });
      await setJobMessage(
        tx,
        Number(j.job_id),
        j.message.replace(/W=[0-9:]+/, `W=${durationText(walltime)}`),
      );
    }
    const rows = await tx<{ job_id: number }[]>`
      UPDATE jobs SET start_time = ${now}, assigned_moldable_job = x.m
      FROM unnest(${ids}::int[], ${molds}::int[]) AS x(id, m)
      WHERE jobs.job_id = x.id AND jobs.state = 'Waiting'
      RETURNING jobs.job_id`;
    const ok = rows.map((r) => Number(r.job_id));
    const okSet = new Set(ok);
    const okMolds = jobs.filter((j) => okSet.has(Number(j.job_id))).map((j) => j.moldable_id);
    await tx`
      INSERT INTO assigned_resources (moldable_job_id, resource_id, assigned_resource_index)
      SELECT g.moldable_job_id, g.resource_id, 'CURRENT' FROM gantt_jobs_resources g
      WHERE g.moldable_job_id = ANY(${okMolds}::int[])
      ON CONFLICT DO NOTHING`;
    // In the same transaction: a job is never seen assigned and still Waiting (setJobState's
    // rules, in a few set-based statements for all of them).
    return await setJobsState(tx, notifier, ok, "toLaunch");
  });
  const launched = assigned;
  for (const id of launched) notifier.commander({ job_id: id, cmd: "OARRUN", args: [] });
  if (launched.length > 0) log.info("launched jobs: {ids}", { ids: launched.join(",") });
  return launched;
}
