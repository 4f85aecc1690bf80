/**
 * One meta-scheduler round (OAR's `kao`, spec §11). Exit code: 0 normal, 1 run again at once (a
 * reservation was acknowledged and starts now), 2 besteffort jobs were fragged (almighty runs
 * Leon).
 *
 * Shape: the Gantt is rebuilt and every decision computed in memory, then written in one
 * transaction (steps 2–5); state changes follow, each through setJobState (steps 6–15). A job
 * the scheduler cannot handle gets a message and is skipped: a round never dies of one job.
 */
import type { Config } from "../config.ts";
import type { Queryable, Sql } from "../db/client.ts";
import { dbNow } from "../db/client.ts";
import { addEvent, inTransaction } from "../events.ts";
import { fragJob, FragResult } from "../frag.ts";
import { type JobState, setJobMessage, setJobsState, setJobState } from "../jobs.ts";
import type { Logger } from "../log.ts";
import type { Notifier } from "../notifier.ts";
import { InteractiveMessages } from "../protocol.ts";
import { FilterCache } from "./filters.ts";
import { fairshareSettings, karmaText, loadConsumption, saveKarma, sortByKarma } from "./karma.ts";
import {
  copyGanttToVisu,
  CURRENT_STATES,
  type GanttJob,
  type GanttRow,
  loadGanttJobs,
  resetGantt,
  saveGanttRows,
  setGanttStart,
} from "./gantt.ts";
import { matchGroups } from "./hierarchy.ts";
import { contains, difference, type Itvs, overlaps } from "./intervals.ts";
import { type SchedJob, scheduleJobs } from "./kamelot.ts";
import { type OarsubNotify, sqlTime, tcpOarsubNotify } from "./oarsub_notify.ts";
import {
  buildGroups,
  durationText,
  filtersOf,
  jobMessage,
  loadReservations,
  loadWaitingJobs,
  type SchedJobRow,
  toSchedJob,
} from "./requests.ts";
import { loadResourceSet, type ResourceSet, toOrderedIds, toResourceIds } from "./resource_set.ts";
import { MAX_TIME, SlotSet } from "./slots.ts";
import { timesharingKey } from "./timesharing.ts";

export interface RoundContext {
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  /** DB time by default; tests pass their own. */
  now?: number;
  /** TCP to oarsub by default. */
  oarsub?: OarsubNotify;
}

export interface RoundReport {
  exitCode: number;
  /** Jobs set to toLaunch this round. */
  launched: number[];
  /** Besteffort jobs fragged this round. */
  fragged: number[];
  /** Job id → why it was not scheduled. */
  skipped: Map<number, string>;
  timings: Record<string, number>;
}

const CURRENT: ReadonlySet<string> = new Set(CURRENT_STATES);

interface QueueRow {
  queue_name: string;
  priority: number;
  scheduler_policy: string;
  state: string;
}

interface StateChange {
  jobId: number;
  state: JobState;
  message?: string;
}

export async function metaSchedRound(ctx: RoundContext): Promise<RoundReport> {
  const { sql, config, log, notifier } = ctx;
  const oarsub = ctx.oarsub ?? tcpOarsubNotify;
  const timings: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (name: string) => {
    const t = performance.now();
    timings[name] = (timings[name] ?? 0) + (t - t0);
    t0 = t;
  };
  const now = ctx.now ?? await dbNow(sql);
  const security = config.int("SCHEDULER_JOB_SECURITY_TIME");
  const killDelay = config.int("SCHEDULER_BESTEFFORT_KILL_DURATION_BEFORE_RESERVATION");
  const maxJobs = config.int("MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND");
  const arTimeout = config.int("RESERVATION_WAITING_RESOURCES_TIMEOUT");
  const external = config.str("METASCHEDULER_MODE").toLowerCase() === "external";

  const rs = await loadResourceSet(sql, config, log);
  const filters = new FilterCache(rs);
  const slots = new SlotSet(rs.schedulable, now);
  for (const [t, itvs] of rs.availableUpto) slots.occupy(Math.max(t, now), MAX_TIME, itvs);
  lap("resources");

  const priority = config.str("JOB_PRIORITY").trim().toUpperCase();
  if (priority !== "" && priority !== "FIFO" && priority !== "FAIRSHARE") {
    log.warn("JOB_PRIORITY={p} is not supported; jobs are ordered FIFO", { p: priority });
  }
  const fairshare = priority === "FAIRSHARE"
    ? fairshareSettings(config, (msg) => log.warn("{msg}", { msg }))
    : null;
  const karmas = new Map<number, number>();
  const skipped = new Map<number, string>();
  const messages = new Map<number, string>();
  const stateChanges: StateChange[] = [];
  const notActive: string[] = [];
  let exitCode = 0;

  await inTransaction(sql, async (tx) => {
    await noJit(tx);
    await resetGantt(tx);
    lap("gantt_reset");
    const gantt = await loadGanttJobs(tx, now);
    lap("gantt_load");
    const plannedEnd = new Map<number, number>();
    const besteffortRunning: GanttJob[] = [];
    for (const g of gantt) {
      const occupied = g.walltime + security + g.suspendedFor;
      plannedEnd.set(g.jobId, g.start + occupied);
      if (g.besteffort && CURRENT.has(g.state)) {
        besteffortRunning.push(g);
        continue;
      }
      // A job past its walltime still holds its resources until it is really gone.
      const end = Math.max(g.start + occupied - 1, CURRENT.has(g.state) ? now : 0);
      slots.occupy(g.start, end, toOrderedIds(rs, g.rids), timesharingKey(g.types, g.user, g.name));
    }
    let besteffortPlaced = false;
    const placeBesteffort = () => {
      if (besteffortPlaced) return;
      besteffortPlaced = true;
      for (const g of besteffortRunning) {
        const end = Math.max(g.start + g.walltime + security + g.suspendedFor - 1, now);
        slots.occupy(
          g.start,
          end,
          toOrderedIds(rs, g.rids),
          timesharingKey(g.types, g.user, g.name),
        );
      }
    };
    const ganttRows: GanttRow[] = [];

    const queues = await tx<QueueRow[]>`
      SELECT queue_name, priority, scheduler_policy, state FROM queues
      ORDER BY priority DESC, queue_name`;
    const groups: QueueRow[][] = [];
    for (const q of queues) {
      const last = groups.at(-1);
      if (last && last[0].priority === q.priority) last.push(q);
      else groups.push([q]);
    }
    for (const group of groups) {
      const active = group.filter((q) => q.state === "Active");
      if (active.length === 0) continue;
      if (active.every((q) => q.queue_name === "besteffort")) placeBesteffort();
      if (external) {
        // External schedulers are not supported: OAR's rule for a scheduler that cannot run
        // applies (the queue is deactivated), and the admin reads why in the log.
        for (const q of active) {
          log.error(
            "queue {queue}: external scheduler {policy} cannot be run; queue set notActive",
            {
              queue: q.queue_name,
              policy: q.scheduler_policy,
            },
          );
          notActive.push(q.queue_name);
        }
        continue;
      }
      // Kamelot on the group's queues together.
      let waiting = await loadWaitingJobs(tx, active.map((q) => q.queue_name), maxJobs);
      let karma: Map<number, number> | null = null;
      if (fairshare !== null && waiting.length > 0) {
        const used = await loadConsumption(
          tx,
          active.map((q) => q.queue_name),
          now,
          fairshare.windowSize,
        );
        ({ ordered: waiting, karma } = sortByKarma(waiting, used, fairshare));
        for (const [id, k] of karma) karmas.set(id, k);
      }
      lap("jobs_load");
      if (waiting.length > 0) {
        // Own READ ONLY transaction on another connection: never the one writing the Gantt.
        await filters.load(sql, filtersOf(waiting));
        const schedJobs: SchedJob[] = [];
        const rows = new Map<number, SchedJobRow>();
        for (const j of waiting) {
          rows.set(j.jobId, j);
          const sj = toSchedJob(j, rs, filters, security, now);
          if (typeof sj === "string") skipped.set(j.jobId, sj);
          else schedJobs.push(sj);
        }
        lap("requests");
        const result = scheduleJobs(slots, rs.hierarchy, schedJobs, { plannedEnd });
        lap("schedule");
        for (const [id, why] of result.skipped) skipped.set(id, why);
        for (const p of result.placed) {
          const rids = toResourceIds(rs, p.res);
          ganttRows.push({ moldableId: p.moldableId, start: p.start, rids });
          const j = rows.get(p.jobId)!;
          const k = karma?.get(p.jobId);
          messages.set(
            p.jobId,
            jobMessage(
              j,
              rids.length,
              p.walltime - security,
              false,
              k === undefined ? undefined : karmaText(k),
            ),
          );
        }
      }
      for (const q of active) {
        await waitingReservations(tx, q.queue_name, gantt, rs, now, arTimeout, stateChanges, log);
        await newReservations(tx, sql, q.queue_name, rs, filters, slots, now, security, {
          ganttRows,
          stateChanges,
          messages,
        });
      }
    }
    for (const [id, why] of skipped) messages.set(id, why);
    lap("reservations");
    await saveGanttRows(tx, ganttRows);
    lap("gantt_save");
    await saveMessages(tx, messages);
    await saveKarma(tx, karmas);
    if (notActive.length > 0) {
      await tx`UPDATE queues SET state = 'notActive' WHERE queue_name IN ${tx(notActive)}`;
    }
    lap("messages");
  });
  lap("commit");

  for (const c of stateChanges) {
    await setJobState(sql, notifier, c.jobId, c.state, { message: c.message });
  }

  // Steps 6–8: jobs to launch, besteffort jobs in their way.
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
      WHERE j.state = 'Waiting' AND g.start_time <= ${now + killDelay}
        AND NOT EXISTS (SELECT 1 FROM frag_jobs f WHERE f.frag_id_job = j.job_id)
      ORDER BY g.start_time, j.job_id`;
  });
  const besteffort = await runningBesteffort(sql);
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
  const fragged: number[] = [];
  const launched: number[] = [];
  if (toKill.size > 0) {
    for (const id of [...toKill].sort((a, b) => a - b)) {
      const r = await fragJob(sql, id, "oar");
      if (r === FragResult.ok) {
        await addEvent(sql, {
          type: "BESTEFFORT_KILL",
          jobId: id,
          description: `kill the besteffort job ${id}`,
        });
        fragged.push(id);
      }
    }
    log.info("besteffort jobs to kill: {ids}; nothing launched this round", {
      ids: [...toKill].join(","),
    });
    notifier.almighty("ChState");
    exitCode = 2;
  } else {
    const launchable = candidates.filter((c) =>
      c.start <= now && !overlaps(toOrderedIds(rs, c.rids ?? []), rs.absent) &&
      (c.rids ?? []).length > 0
    );
    launched.push(...await launchJobs(sql, notifier, launchable, now, log));
  }
  lap("launch");

  await inTransaction(sql, async (tx) => {
    await noJit(tx);
    await copyGanttToVisu(tx);
  });
  lap("visu");

  // Step 12: waiting interactive users learn when their job should start.
  await notifyStartPredictions(sql, notifier, oarsub, now, log);
  lap("predictions");

  // Steps 13–14: reservation and interactive outcomes reported to oarsub.
  const toError = await sql<
    {
      job_id: number;
      job_type: string;
      reservation: string;
      info_type: string | null;
      message: string;
    }[]
  >`
    SELECT job_id, job_type, reservation, info_type, message FROM jobs
    WHERE state = 'toError' ORDER BY job_id`;
  for (const j of toError) {
    if (j.job_type === "INTERACTIVE" || j.reservation === "Scheduled") {
      const sent = await oarsub(j.info_type, [j.message, InteractiveMessages.badJob]);
      if (!sent) log.warn("job {id}: cannot notify oarsub of its error", { id: j.job_id });
    }
    await setJobState(sql, notifier, Number(j.job_id), "Error");
  }
  const toAck = await sql<{ job_id: number; info_type: string | null; start: number | null }[]>`
    SELECT j.job_id, j.info_type,
      (SELECT g.start_time FROM gantt_jobs_predictions g
       JOIN moldable_job_descriptions m ON m.moldable_id = g.moldable_job_id
       WHERE m.moldable_job_id = j.job_id LIMIT 1) AS start
    FROM jobs j WHERE j.state = 'toAckReservation' ORDER BY j.job_id`;
  for (const j of toAck) {
    const id = Number(j.job_id);
    if (await oarsub(j.info_type, [InteractiveMessages.goodReservation])) {
      await setJobState(sql, notifier, id, "Waiting");
      if (j.start !== null && j.start - 1 <= now && exitCode === 0) exitCode = 1;
    } else {
      log.warn("job {id}: cannot notify oarsub of its reservation; job fragged", { id });
      await addEvent(sql, {
        type: "CANNOT_NOTIFY_OARSUB",
        jobId: id,
        description: `Can not notify oarsub for the job ${id}`,
      });
      // Waiting first: Leon turns a fragged Waiting job into Error.
      await setJobState(sql, notifier, id, "Waiting");
      await fragJob(sql, id, "oar");
      notifier.almighty("Qdel");
      exitCode = 2;
    }
  }

  // Step 15: every toLaunch job is (re)notified, once.
  const pending = await sql<{ job_id: number }[]>`
    SELECT job_id FROM jobs WHERE state = 'toLaunch' ORDER BY job_id`;
  const notified = new Set(launched);
  for (const p of pending) {
    const id = Number(p.job_id);
    if (!notified.has(id)) notifier.commander({ job_id: id, cmd: "OARRUN", args: [] });
  }
  lap("notify");
  return { exitCode, launched, fragged, skipped, timings };
}

/**
 * PostgreSQL's JIT (jit_above_cost) compiles the round's statements over large tables for
 * 100-300 ms each, to save a few milliseconds of execution: off in the round's transactions.
 */
async function noJit(tx: Queryable): Promise<void> {
  await tx`SET LOCAL jit = off`;
}

/** Step 4: accepted reservations whose start has come but whose resources are missing. */
async function waitingReservations(
  tx: Queryable,
  queue: string,
  gantt: readonly GanttJob[],
  rs: ResourceSet,
  now: number,
  timeout: number,
  stateChanges: StateChange[],
  log: Logger,
): Promise<void> {
  const alive = difference(rs.schedulable, rs.absent);
  for (const g of gantt) {
    if (g.queue !== queue || g.reservation !== "Scheduled" || g.state !== "Waiting") continue;
    if (now > g.jobStart + g.walltime) {
      stateChanges.push({
        jobId: g.jobId,
        state: "Error",
        message: "Reservation expired and couldn't be started.",
      });
      continue;
    }
    if (g.start > now) continue;
    const presentRids = g.rids.filter((rid) => {
      const o = rs.oids.get(rid);
      return o !== undefined && contains(alive, o);
    });
    const missing = g.rids.length - presentRids.length;
    if (missing === 0) continue;
    if (presentRids.length === 0 || now <= g.jobStart + timeout) {
      await setGanttStart(tx, g.moldableId, now + 1);
      continue;
    }
    const keep = presentRids;
    await tx`DELETE FROM gantt_jobs_resources
      WHERE moldable_job_id = ${g.moldableId} AND resource_id <> ALL(${keep}::int[])`;
    await addEvent(tx, {
      type: "SCHEDULER_REDUCE_NB_RESSOURCES_FOR_RESERVATION",
      jobId: g.jobId,
      description: `[MetaSched] Reduce the number of resources for the job ${g.jobId}`,
    });
    const [{ message }] = await tx<{ message: string }[]>`
      SELECT message FROM jobs WHERE job_id = ${g.jobId}`;
    await setJobMessage(tx, g.jobId, message.replace(/R=\d+/, `R=${keep.length}`));
    log.info("reservation {id}: {n} missing resources dropped", { id: g.jobId, n: missing });
  }
}

/** Step 5: new advance reservations of a queue, first moldable only. */
async function newReservations(
  tx: Queryable,
  pool: Sql,
  queue: string,
  rs: ResourceSet,
  filters: FilterCache,
  slots: SlotSet,
  now: number,
  security: number,
  out: { ganttRows: GanttRow[]; stateChanges: StateChange[]; messages: Map<number, string> },
): Promise<void> {
  const ars = await loadReservations(tx, queue, "toSchedule");
  if (ars.length === 0) return;
  await filters.load(pool, filtersOf(ars));
  for (const j of ars) {
    const refuse = (message: string) =>
      out.stateChanges.push({ jobId: j.jobId, state: "toError", message });
    const m = j.moldables[0];
    if (!m) {
      refuse("This advance reservation cannot run: no moldable description");
      continue;
    }
    if (now >= j.startTime + m.walltime) {
      refuse("Reservation too old");
      continue;
    }
    const start = Math.max(j.startTime, now);
    const groups = buildGroups(j, m, rs, filters);
    if (typeof groups === "string") {
      refuse(`This advance reservation cannot run: ${groups}`);
      continue;
    }
    const free = slots.freeOver(start, m.walltime + security);
    const res: Itvs | null = free.length === 0 ? null : matchGroups(rs.hierarchy, groups, free);
    if (res === null) {
      refuse("This advance reservation cannot run");
      continue;
    }
    slots.occupy(start, start + m.walltime + security - 1, res);
    const rids = toResourceIds(rs, res);
    out.ganttRows.push({ moldableId: m.moldableId, start, rids });
    out.stateChanges.push({
      jobId: j.jobId,
      state: "toAckReservation",
      message: jobMessage(j, rids.length, m.walltime, true),
    });
  }
  await tx`UPDATE jobs SET reservation = 'Scheduled'
    WHERE job_id IN ${tx(ars.map((j) => j.jobId))} AND reservation = 'toSchedule'`;
}

/** Messages of waiting jobs, in one statement; unchanged ones are not rewritten. */
async function saveMessages(tx: Queryable, messages: Map<number, string>): Promise<void> {
  if (messages.size === 0) return;
  const ids = [...messages.keys()];
  const texts = ids.map((id) => messages.get(id)!.slice(0, 255));
  await tx`
    UPDATE jobs SET message = x.m
    FROM unnest(${ids}::int[], ${texts}::text[]) AS x(id, m)
    WHERE jobs.job_id = x.id AND jobs.message IS DISTINCT FROM x.m`;
}

/** Besteffort jobs holding resources now. */
async function runningBesteffort(
  sql: Queryable,
): Promise<{ jobId: number; rids: number[]; timesharing: string | null }[]> {
  const rows = await sql<
    {
      job_id: number;
      job_user: string;
      job_name: string | null;
      types: string[] | null;
      rids: number[] | null;
    }[]
  >`
    SELECT j.job_id, j.job_user, j.job_name,
      (SELECT array_agg(t.type::text) FROM job_types t
       WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT') AS types,
      (SELECT array_agg(ar.resource_id) FROM assigned_resources ar
       WHERE ar.moldable_job_id = j.assigned_moldable_job
         AND ar.assigned_resource_index = 'CURRENT') AS rids
    FROM jobs j
    WHERE j.state IN ${sql(CURRENT_STATES)}
      AND (j.queue_name = 'besteffort' OR EXISTS (
        SELECT 1 FROM job_types t WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT'
          AND t.type = 'besteffort'))`;
  return rows.map((r) => ({
    jobId: Number(r.job_id),
    rids: (r.rids ?? []).map(Number),
    timesharing: timesharingKey(r.types ?? [], r.job_user, r.job_name),
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
    await tx`
      INSERT INTO assigned_resources (moldable_job_id, resource_id, assigned_resource_index)
      SELECT g.moldable_job_id, g.resource_id, 'CURRENT' FROM gantt_jobs_resources g
      JOIN jobs j ON j.assigned_moldable_job = g.moldable_job_id
      WHERE j.job_id = ANY(${ok}::int[])
      ON CONFLICT DO NOTHING`;
    return ok;
  });
  // One transaction and a few set-based statements for all of them (setJobState's rules).
  const launched = await setJobsState(sql, notifier, assigned, "toLaunch");
  for (const id of launched) notifier.commander({ job_id: id, cmd: "OARRUN", args: [] });
  if (launched.length > 0) log.info("launched jobs: {ids}", { ids: launched.join(",") });
  return launched;
}

/**
 * Step 12: each interactive job still waiting is told its predicted start
 * (`[now] Start prediction: start (message)`), every round. An oarsub that cannot be reached
 * has gone: its job is fragged (event LOST_SESSION) and Almighty told (Qdel), as OAR does.
 * The notifications go out concurrently: one unreachable host does not delay the others.
 */
async function notifyStartPredictions(
  sql: Sql,
  notifier: Notifier,
  oarsub: OarsubNotify,
  now: number,
  log: Logger,
): Promise<void> {
  const jobs = await sql<
    { job_id: number; info_type: string | null; message: string; start: number }[]
  >`
    SELECT j.job_id, j.info_type, j.message, MIN(g.start_time) AS start
    FROM jobs j
    JOIN moldable_job_descriptions m ON m.moldable_job_id = j.job_id
    JOIN gantt_jobs_predictions g ON g.moldable_job_id = m.moldable_id
    WHERE j.state = 'Waiting' AND j.job_type = 'INTERACTIVE' AND j.reservation = 'None'
      AND NOT EXISTS (SELECT 1 FROM frag_jobs f WHERE f.frag_id_job = j.job_id)
    GROUP BY j.job_id, j.info_type, j.message
    ORDER BY j.job_id`;
  if (jobs.length === 0) return;
  const nowText = sqlTime(now);
  const sent = await Promise.all(jobs.map((j) =>
    oarsub(j.info_type, [
      InteractiveMessages.startPrediction(nowText, sqlTime(j.start), j.message),
    ])
  ));
  let lost = 0;
  for (let i = 0; i < jobs.length; i++) {
    if (sent[i]) continue;
    const id = Number(jobs[i].job_id);
    log.warn("job {id}: cannot reach its interactive oarsub; job fragged", { id });
    await addEvent(sql, {
      type: "LOST_SESSION",
      jobId: id,
      description: `Cannot notify the interactive oarsub of the job ${id}: session lost`,
    });
    if (await fragJob(sql, id, "oar") === FragResult.ok) lost++;
  }
  if (lost > 0) notifier.almighty("Qdel");
}
