/**
 * Sarko, the periodic "villains" check (docs/modules.md §7): frag timers, walltimes, checkpoints,
 * desktop-computing expiry and the dead switch. Returns the module's exit code: 1 when Leon has
 * work (a job was fragged or its frag timer fired), else 0.
 *
 * Differences from OAR 3 (docs/differences.md §4-§6): a suspended job's walltime is extended by the
 * time it spent suspended; a job gets one WALLTIME event and one checkpoint signal, not one per
 * run; the dead switch only applies to resources logged Absent or Suspected. Sarko also ends
 * jobs left in Launching or Finishing by a process that died (modules/sarko/stuck_jobs.ts).
 */
import type { Config } from "../../lib/runtime/config.ts";
import { dbNow, type Sql } from "../../lib/db/client.ts";
import { eventExists, insertEvent, inTransaction } from "../../lib/job/events.ts";
import { fragJob, FragResult, setFragState, timerArmedJobs } from "../../lib/job/frag.ts";
import { suspendedDuration } from "../../lib/job/jobs.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import type { Notifier } from "../../lib/transport/notifier.ts";
import type { OarexecSignaller } from "../../lib/launch/oarexec_signal.ts";
import { setResourceNextState } from "../../lib/resource/resources.ts";
import { checkLostOarexecs, recoverStuckJobs } from "./stuck_jobs.ts";
import { requestCheckpoint } from "../../lib/job/checkpoint.ts";
import { headHost } from "../../lib/job/head_host.ts";
import { ENDING_STATES, stateIn } from "../../lib/job/states.ts";
import { type Launcher, makeLauncher } from "../../lib/launch/launcher.ts";

export interface SarkoContext {
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  signaller: OarexecSignaller;
  /** DB time by default; tests inject theirs. */
  clock?: () => Promise<number>;
  /** Asks nodes about their jobs' oarexecs; the configured launcher by default. */
  launcher?: Pick<Launcher, "heldJobs">;
}

/** The account Sarko frags jobs as (OAR's `$OARDO_USER`, i.e. oar). */
export const SARKO_USER = "oar";

/** Leon's soft and hard delays after a frag (docs/modules.md §6.3): JOBDEL_* override LEON_*. */
export function leonDelays(config: Config): { soft: number; hard: number } {
  const pick = (override: string, base: string) =>
    config.str(override).trim() !== "" ? config.int(override) : config.int(base);
  const soft = pick("JOBDEL_SOFTWALLTIME", "LEON_SOFT_WALLTIME");
  let hard = pick("JOBDEL_WALLTIME", "LEON_WALLTIME");
  if (hard <= soft) hard = soft + 10;
  return { soft, hard };
}

export async function runSarko(ctx: SarkoContext): Promise<number> {
  const now = await (ctx.clock ?? (() => dbNow(ctx.sql)))();
  let guilty = false;
  if (await checkFragTimers(ctx, now)) guilty = true;
  if (await checkWalltimes(ctx, now)) guilty = true;
  const stuck = { ...ctx, notifyChState: () => ctx.notifier.almighty("ChState") };
  if (await recoverStuckJobs(stuck, now, SARKO_USER)) guilty = true;
  if (await checkLostOarexecs(lostOarexecContext(ctx), now, SARKO_USER)) guilty = true;
  await checkExpiredDesktopResources(ctx, now);
  await checkDeadSwitch(ctx, now);
  return guilty ? 1 : 0;
}

/** The lost-oarexec check's view of sarko (modules/sarko/stuck_jobs.ts). */
function lostOarexecContext(ctx: SarkoContext) {
  let launcher = ctx.launcher;
  return {
    sql: ctx.sql,
    config: ctx.config,
    log: ctx.log,
    heldJobs: (host: string, ids: number[]) => {
      launcher ??= makeLauncher(ctx.config, ctx.log);
      return launcher.heldJobs?.(host, ids) ?? Promise.resolve(null);
    },
    headHost: (id: number) => headHost(ctx.sql, ctx.config, id),
    stateDir: ctx.config.str("OAR_RUNTIME_DIRECTORY") || null,
  };
}

/** Step 1: jobs whose deletion was sent (TIMER_ARMED). */
async function checkFragTimers(ctx: SarkoContext, now: number): Promise<boolean> {
  const { soft, hard } = leonDelays(ctx.config);
  let guilty = false;
  for (const job of await timerArmedJobs(ctx.sql)) {
    const id = job.job_id;
    if (stateIn(ENDING_STATES, job.state)) {
      await setFragState(ctx.sql, id, "FRAGGED", "TIMER_ARMED");
      ctx.log.debug("job {id} is gone: frag done", { id });
      continue;
    }
    const elapsed = now - job.frag_date;
    if (elapsed > hard) {
      if (await setFragState(ctx.sql, id, "LEON_EXTERMINATE", "TIMER_ARMED")) {
        ctx.log.warn("job {id} still {state} {elapsed} s after its deletion: exterminate it", {
          id,
          state: job.state,
          elapsed,
        });
        guilty = true;
      }
    } else if (elapsed > soft) {
      if (await setFragState(ctx.sql, id, "LEON", "TIMER_ARMED")) {
        ctx.log.info("job {id} still {state} {elapsed} s after its deletion: kill it again", {
          id,
          state: job.state,
          elapsed,
        });
        guilty = true;
      }
    }
  }
  return guilty;
}

interface RunningJob {
  job_id: number;
  start_time: number;
  checkpoint: number;
  suspended: "YES" | "NO";
  walltime: number;
}

/** Step 2: Running jobs past their walltime, or inside their checkpoint window. */
async function checkWalltimes(ctx: SarkoContext, now: number): Promise<boolean> {
  const jobs = await ctx.sql<RunningJob[]>`
    SELECT j.job_id, j.start_time, j.checkpoint, j.suspended, m.moldable_walltime AS walltime
    FROM jobs j JOIN moldable_job_descriptions m ON m.moldable_id = j.assigned_moldable_job
    WHERE j.state = 'Running'
    ORDER BY j.job_id`;
  let guilty = false;
  for (const j of jobs) {
    const id = Number(j.job_id);
    let max = j.walltime;
    if (j.suspended === "YES") max += await suspendedDuration(ctx.sql, id, now);
    if (now > j.start_time + max) {
      if (await fragForWalltime(ctx, id, j.start_time, max, now)) guilty = true;
    } else if (j.checkpoint > 0 && now >= j.start_time + max - j.checkpoint) {
      await requestCheckpoint(ctx, id, "sarko");
    }
  }
  return guilty;
}

/**
 * Frags a job over its walltime and writes its WALLTIME event, once: the job row lock and the
 * event's presence make a second detection (next run, or a concurrent one) a no-op. Returns
 * whether Leon has a new job to kill.
 */
async function fragForWalltime(
  ctx: SarkoContext,
  id: number,
  start: number,
  max: number,
  now: number,
): Promise<boolean> {
  const result = await inTransaction(ctx.sql, async (tx) => {
    const rows = await tx<{ state: string }[]>`
      SELECT state FROM jobs WHERE job_id = ${id} FOR UPDATE`;
    if (rows[0]?.state !== "Running") return null;
    if (await eventExists(tx, id, "WALLTIME")) return null;
    const frag = await fragJob(tx, id, SARKO_USER);
    await insertEvent(tx, {
      type: "WALLTIME",
      jobId: id,
      description: `Job: ${id} from ${start} with ${max}; current time=${now} (Elapsed)`,
    });
    return frag;
  });
  if (result === null) return false;
  ctx.log.warn("job {id} reached its walltime ({max} s from {start})", { id, max, start });
  if (result !== FragResult.ok && result !== FragResult.alreadyFragged) {
    ctx.log.error("cannot frag job {id} (code {result})", { id, result });
  }
  return result === FragResult.ok;
}

/** Step 3: desktop-computing resources past their expiry date become Suspected. */
async function checkExpiredDesktopResources(ctx: SarkoContext, now: number): Promise<void> {
  const expired = await ctx.sql<{ resource_id: number; network_address: string }[]>`
    SELECT resource_id, network_address FROM resources
    WHERE state = 'Alive' AND desktop_computing = 'YES' AND next_state = 'UnChanged'
      AND expiry_date > 0 AND expiry_date < ${now}
    ORDER BY resource_id`;
  for (const r of expired) {
    const rid = Number(r.resource_id);
    await inTransaction(ctx.sql, async (tx) => {
      await setResourceNextState(tx, rid, "Suspected", "NO");
      await insertEvent(tx, {
        type: "LOG_SUSPECTED",
        jobId: 0,
        description:
          `The DESKTOP COMPUTING resource ${rid} has expired on node ${r.network_address}`,
        hosts: [r.network_address],
      });
    });
    ctx.log.warn("desktop computing resource {rid} on {host} has expired", {
      rid,
      host: r.network_address,
    });
  }
  if (expired.length > 0) ctx.notifier.almighty("ChState");
}

/** Step 4: resources Absent or Suspected for longer than DEAD_SWITCH_TIME become Dead. */
async function checkDeadSwitch(ctx: SarkoContext, now: number): Promise<void> {
  const delay = ctx.config.int("DEAD_SWITCH_TIME");
  if (delay <= 0) return;
  const rows = await ctx.sql<{ resource_id: number; network_address: string; value: string }[]>`
    SELECT DISTINCT r.resource_id, r.network_address, l.value
    FROM resources r JOIN resource_logs l ON l.resource_id = r.resource_id
    WHERE l.attribute = 'state' AND l.date_stop = 0
      AND l.value IN ('Absent', 'Suspected') AND l.date_start + ${delay}::int < ${now}::int
      AND r.state <> 'Dead' AND r.next_state = 'UnChanged'
    ORDER BY r.resource_id`;
  for (const r of rows) {
    await setResourceNextState(ctx.sql, Number(r.resource_id), "Dead", "YES");
    ctx.log.warn("resource {rid} on {host} {value} for more than {delay} s: Dead", {
      rid: Number(r.resource_id),
      host: r.network_address,
      value: r.value,
      delay,
    });
  }
  if (rows.length > 0) ctx.notifier.almighty("ChState");
}
