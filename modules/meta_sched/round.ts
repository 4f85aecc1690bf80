/**
 * One meta-scheduler round (OAR's `kao`, docs/modules.md §11). Exit code: 0 normal, 1 run again at
 * once (a reservation was acknowledged and starts now), 2 besteffort jobs were fragged (almighty
 * runs Leon).
 *
 * Shape: the Gantt is rebuilt and every decision computed in memory, then written in one
 * transaction (steps 2–5), as the difference with what the tables held (gantt.ts); state
 * changes follow, each through setJobState (steps 6–15). Work that touches disjoint rows runs
 * on other connections at the same time: the resource set is read while the Gantt is, the
 * job messages and the `_visu` copy are written while the Gantt is (the copy's predictions
 * once the launches are done). A job the scheduler cannot handle gets a message and is
 * skipped: a round never dies of one job.
 */
import type { Config } from "../../lib/runtime/config.ts";
import type { Queryable, Sql } from "../../lib/db/client.ts";
import { dbNow } from "../../lib/db/client.ts";
import { addEvent, fitVarchar, inTransaction } from "../../lib/job/events.ts";
import { fragJob, FragResult } from "../../lib/job/frag.ts";
import {
  JOB_MESSAGE_MAX,
  type JobState,
  setJobMessage,
  setJobsState,
  setJobState,
} from "../../lib/job/jobs.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import type { Notifier } from "../../lib/transport/notifier.ts";
import { InteractiveMessages } from "../../lib/protocol/mod.ts";
import { FilterCache } from "./kamelot/filters.ts";
import {
  type FairshareSettings,
  fairshareSettings,
  karmaText,
  loadConsumption,
  saveKarma,
  sortByKarma,
} from "./kamelot/karma.ts";
import {
  applyGanttDelta,
  CURRENT_STATES,
  diffGantt,
  type GanttDelta,
  type GanttJob,
  type GanttMap,
  loadBaseGantt,
  loadGanttMap,
  lockGantt,
  lockVisu,
  openPairsCopy,
  type PairsCopy,
  pairsText,
  setGanttStart,
  visuResourcesInSync,
  writeVisuPredictions,
  writeVisuResources,
} from "./kamelot/gantt.ts";
import { matchGroups } from "./kamelot/hierarchy.ts";
import { contains, difference, type Itvs, overlaps } from "./kamelot/intervals.ts";
import {
  containerName,
  containerSlotSet,
  type Placement,
  type SchedJob,
  scheduleJobs,
} from "./kamelot/kamelot.ts";
import { schedTypes } from "./kamelot/job_types.ts";
import { firstCheckpointDate, requestCheckpoint } from "../../lib/job/checkpoint.ts";
import type { OarexecSignaller } from "../../lib/launch/oarexec_signal.ts";
import { type OarsubNotify, sqlTime, tcpOarsubNotify } from "./oarsub_notify.ts";
import type { Quotas } from "./kamelot/quotas.ts";
import { loadRoundQuotas } from "./kamelot/quotas_load.ts";
import {
  loadWaitingByPriority,
  type MultifactorOrdering,
  multifactorOrdering,
} from "./kamelot/priority_jobs.ts";
import {
  buildGroups,
  durationText,
  filtersOf,
  jobMessage,
  loadReservations,
  loadWaitingJobs,
  type SchedJobRow,
  toSchedJob,
} from "./kamelot/requests.ts";
import {
  loadResourceSet,
  type ResourceSet,
  toOrderedIds,
  toResourceIds,
} from "./kamelot/resource_set.ts";
import { MAX_TIME, type Sharing, SlotSet } from "./kamelot/slots.ts";
import { timesharingKey } from "./kamelot/timesharing.ts";

/**
 * The connections a round's pool needs: its transaction, the `_visu` copy's transaction beside
 * it, and one for what goes alongside (the first reads, the waiting jobs' messages). Fewer would
 * deadlock, as the round's transaction waits on those. More only opened more backends: each
 * costs PostgreSQL ~4 ms to start and again the catalog look-ups of every statement it parses
 * (an idle round: 38 → 32 ms of PostgreSQL, 110 → 98 ms of meta_sched, from 5 to 3).
 */
export const ROUND_POOL_SIZE = 3;

export interface RoundContext {
  /** A pool of at least ROUND_POOL_SIZE connections. */
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  /** DB time by default; tests pass their own. */
  now?: number;
  /** TCP to oarsub by default. */
  oarsub?: OarsubNotify;
  /**
   * Asks a besteffort job with `checkpoint > 0` to checkpoint before it is killed (docs/modules.md
   * §11 step 7); without one, such a job is killed at once, with a warning.
   */
  signaller?: OarexecSignaller;
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

/** A decision of this round: a moldable's start and resources. */
interface GanttRow {
  moldableId: number;
  start: number;
  rids: number[];
}

interface StateChange {
  jobId: number;
  state: JobState;
  message?: string;
}

export async function metaSchedRound(ctx: RoundContext): Promise<RoundReport> {
  const { sql, config, log, notifier } = ctx;
  const oarsub = ctx.oarsub ?? tcpOarsubNotify;
  // The round's transaction, the `_visu` one and the writes beside them hold connections at
  // once: with fewer than 3, they would wait for each other for ever.
  const poolMax = (sql as { options?: { max?: number } }).options?.max;
  if (poolMax !== undefined && poolMax < 3) {
    throw new Error(`the meta-scheduler needs a pool of 3 connections or more (got ${poolMax})`);
  }
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

  // Read on its own connection while the round's transaction reads the Gantt.
  const rsLoad = loadResourceSet(sql, config, log);
  rsLoad.catch(() => {}); // awaited below; a failure surfaces there
  let rs!: ResourceSet;
  let filters!: FilterCache;
  let slots!: SlotSet;

  const priority = config.str("JOB_PRIORITY").trim().toUpperCase();
  if (!["", "FIFO", "FAIRSHARE", "MULTIFACTOR"].includes(priority)) {
    log.warn("JOB_PRIORITY={p} is not supported; jobs are ordered FIFO", { p: priority });
  }
  const fairshare = priority === "FAIRSHARE"
    ? fairshareSettings(config, (msg) => log.warn("{msg}", { msg }))
    : null;
  const multifactor = priority === "MULTIFACTOR"
    ? multifactorOrdering(config, rsLoad, (msg) => log.warn("{msg}", { msg }))
    : null;
  // The queues, and the waiting jobs of the first group to schedule, are read on their own
  // connection while the round's transaction reads the Gantt (reads of committed rows only).
  const queuesLoad = sql<QueueRow[]>`
    SELECT queue_name, priority, scheduler_policy, state FROM queues
    ORDER BY priority DESC, queue_name`;
  let prefetch: Promise<{ key: string; jobs: GroupJobs } | null> = (async () => {
    if (external) return null;
    for (const group of queueGroups(await queuesLoad)) {
      const names = group.filter((q) => q.state === "Active").map((q) => q.queue_name);
      if (names.length === 0) continue;
      const jobs = await groupJobs(sql, names, now, maxJobs, fairshare, multifactor);
      return { key: names.join("\u0000"), jobs };
    }
    return null;
  })();
  prefetch.catch(() => {}); // awaited below; a failure surfaces there
  const karmas = new Map<number, number>();
  const skipped = new Map<number, string>();
  const messages = new Map<number, string>();
  /** Waiting jobs' messages as read this round: one the round leaves as it is is not written. */
  const shown = new Map<number, string>();
  const isShown = (id: number, text: string) => shown.get(id) === storedMessage(text);
  const stateChanges: StateChange[] = [];
  const notActive: string[] = [];
  let exitCode = 0;
  // Step 9 (the `_visu` copy) runs in its own transaction beside the round: its resources
  // beside the Gantt's, its predictions once the launches are done (a late reservation's start
  // moves then). `visuGate` opens when they are; `visu` is that transaction.
  let openVisuGate!: () => void;
  let failVisuGate!: (e: unknown) => void;
  const visuGate = new Promise<void>((resolve, reject) => {
    openVisuGate = resolve;
    failVisuGate = reject;
  });
  visuGate.catch(() => {}); // rejected only on the way out of a failed round
  const visuCopy = deferred<PairsCopy | null>();
  const deltaReady = deferred<GanttDelta>();
  let visu: Promise<void> | null = null;
  const fragged: number[] = [];
  const launched: number[] = [];
  try {
    await inTransaction(sql, async (tx) => {
      await noJit(tx);
      await lockGantt(tx);
      // Rounds are serialised by the lock: the `_visu` copy cannot change under this check.
      const [old, visuInSync, loaded] = await Promise.all([
        loadGanttMap(tx),
        visuResourcesInSync(sql),
        rsLoad,
      ]);
      rs = loaded;
      filters = new FilterCache(rs);
      slots = new SlotSet(rs.schedulable, now);
      for (const [t, itvs] of rs.availableUpto) slots.occupy(Math.max(t, now), MAX_TIME, itvs);
      lap("resources_gantt_read");
      const gantt = await loadBaseGantt(tx, old, now);
      // QUOTAS=yes: the rules, with what the Gantt holds counted (quotas_load.ts).
      const quota = await loadRoundQuotas(tx, config, rs, gantt, now, security, log);
      // The Gantt this round writes: its base (step 2), then this round's decisions.
      const next: GanttMap = new Map();
      for (const g of gantt) next.set(g.moldableId, { start: g.start, rids: g.rids });
      lap("gantt_load");
      const plannedEnd = new Map<number, number>();
      const besteffortRunning: GanttJob[] = [];
      const containers = new Map<string, SlotSet>();
      const occupyGanttJob = (g: GanttJob, set: SlotSet) => {
        // A job past its walltime still holds its resources until it is really gone.
        const occupied = g.walltime + security + g.suspendedFor;
        const end = Math.max(g.start + occupied - 1, CURRENT.has(g.state) ? now : 0);
        const st = schedTypes(g.types);
        set.occupy(
          g.start,
          end,
          toOrderedIds(rs, g.rids),
          timesharingKey(g.types, g.user, g.name),
          {
            placeholder: st.placeholder,
            allow: st.allow,
          },
        );
      };
      // Containers and placeholders first: the jobs inside them are counted against them.
      const holdsOthers = (g: GanttJob) => {
        const st = schedTypes(g.types);
        return st.container !== null || st.placeholder !== null;
      };
      const ordered = [...gantt.filter(holdsOthers), ...gantt.filter((g) => !holdsOthers(g))];
      for (const g of ordered) {
        plannedEnd.set(g.jobId, g.start + g.walltime + security + g.suspendedFor);
        const st = schedTypes(g.types);
        const name = containerName(g.jobId, st.container);
        if (name !== null) {
          containers.set(
            name,
            containerSlotSet(toOrderedIds(rs, g.rids), g.start, g.walltime + g.suspendedFor),
          );
        }
        if (st.inner !== null) {
          // Inside its container; in the default Gantt too, where the container already holds
          // the same resources (and where they stay held should the container be gone).
          const c = containers.get(st.inner);
          if (c !== undefined) occupyGanttJob(g, c);
        }
        if (g.besteffort && CURRENT.has(g.state)) {
          besteffortRunning.push(g);
          continue;
        }
        occupyGanttJob(g, slots);
      }
      let besteffortPlaced = false;
      const placeBesteffort = () => {
        if (besteffortPlaced) return;
        besteffortPlaced = true;
        for (const g of besteffortRunning) occupyGanttJob(g, slots);
        quota.countBesteffort();
      };
      const ganttRows: GanttRow[] = [];
      /** Moldables whose resource rows were streamed into the Gantt while scheduling. */
      const streamed = new Set<number>();
      /** Messages already written (while scheduling), and the writes under way. */
      const messagesWritten = new Map<number, string>();
      const messageWrites: Promise<void>[] = [];
      // Step 9's transaction, open from now on: the rows streamed into the Gantt while
      // scheduling are streamed into its copy too (when the copy held what the Gantt held).
      visu = inTransaction(sql, async (vtx) => {
        await noJit(vtx);
        await lockVisu(vtx);
        const vcopy = visuInSync ? await openPairsCopy(vtx, "visu") : null;
        visuCopy.resolve(vcopy);
        const delta = await deltaReady.promise;
        if (vcopy !== null) await vcopy.end();
        await writeVisuResources(vtx, delta, next, visuInSync, streamed);
        await visuGate;
        await writeVisuPredictions(vtx);
      }).catch((e) => {
        visuCopy.reject(e);
        throw e;
      });

      const groups = queueGroups(await queuesLoad);
      // Inner jobs of a container not yet placed when their group came (its queue comes
      // later): tried again once every group is done, so they need not wait a round.
      const innerLater: { job: SchedJob; row: SchedJobRow; karma?: number }[] = [];
      /** The message of a job placed now (security time excluded from its walltime). */
      const placedMessage = (p: Placement, row: SchedJobRow, rids: number[], k?: number) =>
        jobMessage(
          row,
          rids.length,
          p.walltime - security,
          false,
          k === undefined ? undefined : karmaText(k),
        );
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
        // Kamelot on the group's queues together (the first group's jobs were read ahead).
        const names = active.map((q) => q.queue_name);
        const pre = await prefetch;
        const { waiting, karma } = pre !== null && pre.key === names.join("\u0000")
          ? pre.jobs
          : await groupJobs(tx, names, now, maxJobs, fairshare, multifactor);
        prefetch = Promise.resolve(null);
        for (const [id, k] of karma ?? []) karmas.set(id, k);
        lap("jobs_load");
        if (quota.broken !== null) {
          // An unusable quotas file holds scheduling (quotas_load.ts says why).
          for (const j of waiting) skipped.set(j.jobId, quota.broken);
        } else if (waiting.length > 0) {
          // Own READ ONLY transaction on another connection: never the one writing the Gantt.
          await filters.load(sql, filtersOf(waiting));
          const schedJobs: SchedJob[] = [];
          const rows = new Map<number, SchedJobRow>();
          for (const j of waiting) {
            rows.set(j.jobId, j);
            shown.set(j.jobId, j.message);
            const sj = toSchedJob(j, rs, filters, security, now);
            if (typeof sj === "string") skipped.set(j.jobId, sj);
            else schedJobs.push(quota.quotas ? { ...sj, quota: j } : sj);
          }
          lap("requests");
          // In chunks: between two, the Gantt rows and messages of the jobs placed so far go to
          // PostgreSQL, which writes them on its own core while the next chunk is scheduled.
          const cache = new Map<string, number>();
          let copy = null as PairsCopy | null;
          const vcopy = await visuCopy.promise;
          for (let c = 0; c < schedJobs.length; c += SCHEDULE_CHUNK) {
            const result = scheduleJobs(
              slots,
              rs.hierarchy,
              schedJobs.slice(c, c + SCHEDULE_CHUNK),
              { plannedEnd, containers, security, cache, quotas: quota.quotas },
            );
            for (const [id, why] of result.skipped) skipped.set(id, why);
            for (const j of schedJobs.slice(c, c + SCHEDULE_CHUNK)) {
              if (j.inner && skipped.has(j.jobId) && !containers.has(j.inner)) {
                innerLater.push({ job: j, row: rows.get(j.jobId)!, karma: karma?.get(j.jobId) });
              }
            }
            const chunkMessages = new Map<number, string>();
            let rowsText = "";
            for (const p of result.placed) {
              const rids = toResourceIds(rs, p.res);
              ganttRows.push({ moldableId: p.moldableId, start: p.start, rids });
              const text = placedMessage(p, rows.get(p.jobId)!, rids, karma?.get(p.jobId));
              messages.set(p.jobId, text);
              // In a steady queue most are what the previous round wrote.
              if (!isShown(p.jobId, text)) chunkMessages.set(p.jobId, text);
              // Rows of a moldable the table does not hold cannot conflict: streamed now.
              if (!old.has(p.moldableId)) {
                rowsText += pairsText(p.moldableId, rids);
                streamed.add(p.moldableId);
              }
            }
            if (rowsText !== "") {
              copy ??= await openPairsCopy(tx, "gantt");
              copy.write(rowsText);
              vcopy?.write(rowsText);
            }
            if (chunkMessages.size > 0) {
              const w = saveMessages(sql, chunkMessages);
              w.catch(() => {}); // awaited before the commit
              messageWrites.push(w);
              for (const [id, text] of chunkMessages) messagesWritten.set(id, text);
            }
            if (c + SCHEDULE_CHUNK < schedJobs.length) await yieldToIo();
          }
          if (copy !== null) await copy.end();
          lap("schedule");
        }
        for (const q of active) {
          await waitingReservations(
            tx,
            q.queue_name,
            gantt,
            next,
            rs,
            now,
            arTimeout,
            stateChanges,
            log,
          );
          if (quota.broken !== null) continue; // left to be scheduled once the file is fixed
          await newReservations(tx, sql, q.queue_name, rs, filters, slots, now, security, {
            ganttRows,
            stateChanges,
            messages,
            containers,
            quotas: quota.quotas,
          });
        }
      }
      const retry = innerLater.filter((l) => containers.has(l.job.inner!));
      if (retry.length > 0) {
        const byId = new Map(retry.map((l) => [l.job.jobId, l]));
        for (const id of byId.keys()) skipped.delete(id);
        const result = scheduleJobs(slots, rs.hierarchy, retry.map((l) => l.job), {
          plannedEnd,
          containers,
          security,
          quotas: quota.quotas,
        });
        for (const [id, why] of result.skipped) skipped.set(id, why);
        for (const p of result.placed) {
          const l = byId.get(p.jobId)!;
          const rids = toResourceIds(rs, p.res);
          ganttRows.push({ moldableId: p.moldableId, start: p.start, rids });
          messages.set(p.jobId, placedMessage(p, l.row, rids, l.karma));
        }
      }
      for (const [id, why] of skipped) messages.set(id, why);
      lap("reservations");
      for (const r of ganttRows) {
        next.set(r.moldableId, { start: r.start, rids: r.rids.slice().sort((a, b) => a - b) });
      }
      const delta = diffGantt(old, next);
      deltaReady.resolve(delta);
      // Messages and karmas go on another connection, at the same time as the Gantt: they touch
      // only waiting non-reservation jobs, which nothing in this transaction writes (no lock
      // conflict), and a message is informative: committed apart, it harms nothing.
      for (const [id, text] of messagesWritten) {
        if (messages.get(id) === text) messages.delete(id);
      }
      for (const [id, text] of messages) if (isShown(id, text)) messages.delete(id);
      await Promise.all([
        applyGanttDelta(tx, delta, "gantt", { written: streamed }),
        inTransaction(sql, async (mtx) => {
          await noJit(mtx);
          await saveMessages(mtx, messages);
          await saveKarma(mtx, karmas);
        }),
        ...messageWrites,
      ]);
      lap("gantt_save");
      if (notActive.length > 0) {
        await tx`UPDATE queues SET state = 'notActive' WHERE queue_name IN ${tx(notActive)}`;
      }
      lap("messages");
    });
    lap("commit");

    for (const c of stateChanges) {
      await setJobState(sql, notifier, c.jobId, c.state, { message: c.message });
    }

    const launchPhase = async () => {
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
      /**
       * Whether a besteffort job with `checkpoint` seconds must be left to checkpoint rather
       * than killed now: it is asked (once), and killed once that many seconds have passed
       * since it was first asked (by whoever: sarko's walltime checkpoint counts too).
       */
      const checkpointFirst = async (be: { jobId: number; checkpoint: number }, t: number) => {
        if (!ctx.signaller) {
          log.warn("besteffort job {id} should checkpoint first, but no signaller: killed", {
            id: be.jobId,
          });
          return false;
        }
        const first = await firstCheckpointDate(sql, be.jobId);
        if (first !== null && t > first + be.checkpoint) return false;
        if (first === null) {
          await requestCheckpoint(
            { sql, config, log, signaller: ctx.signaller },
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
            fragged.push(id);
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
        exitCode = 2;
      } else {
        const launchable = candidates.filter((c) =>
          c.start <= now && !overlaps(toOrderedIds(rs, c.rids ?? []), rs.absent) &&
          (c.rids ?? []).length > 0
        );
        launched.push(...await launchJobs(sql, notifier, launchable, now, log));
      }
    };
    await launchPhase();
    lap("launch");
    openVisuGate();
    await visu;
    lap("visu");
  } catch (e) {
    // The `_visu` transaction rolls back; its own error, if any, is this one's consequence.
    failVisuGate(e);
    deltaReady.reject(e);
    await (visu as Promise<void> | null)?.catch(() => {});
    throw e;
  }

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

/** Jobs scheduled between two hand-overs of their decisions to PostgreSQL. */
const SCHEDULE_CHUNK = 500;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // whoever awaits it sees the failure
  return { promise, resolve, reject };
}

/** Lets pending socket writes and replies go through. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Queues by priority, highest first: groups of equal priority. */
function queueGroups(queues: readonly QueueRow[]): QueueRow[][] {
  const groups: QueueRow[][] = [];
  for (const q of queues) {
    const last = groups.at(-1);
    if (last && last[0].priority === q.priority) last.push(q);
    else groups.push([q]);
  }
  return groups;
}

interface GroupJobs {
  waiting: SchedJobRow[];
  /** Under fairsharing, the karma of every waiting job of the group. */
  karma: Map<number, number> | null;
}

/**
 * A queue group's waiting jobs in priority order. Fairsharing orders them by karma, multifactor
 * by priority (priority_jobs.ts), before the per-round limit applies, as OAR does: the limit
 * keeps the jobs of highest priority, not the oldest ones.
 */
async function groupJobs(
  sql: Queryable,
  names: readonly string[],
  now: number,
  maxJobs: number,
  fairshare: FairshareSettings | null,
  multifactor: MultifactorOrdering | null = null,
): Promise<GroupJobs> {
  if (multifactor !== null) {
    return await loadWaitingByPriority(sql, names, now, maxJobs, multifactor);
  }
  if (fairshare === null) {
    return { waiting: await loadWaitingJobs(sql, names, maxJobs), karma: null };
  }
  const used = await loadConsumption(sql, names, now, fairshare.windowSize);
  let karma: Map<number, number> | null = null;
  const waiting = await loadWaitingJobs(sql, names, maxJobs, (jobs) => {
    const sorted = sortByKarma(jobs, used, fairshare);
    karma = sorted.karma;
    return sorted.ordered;
  });
  return { waiting, karma };
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
  next: GanttMap,
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
    const entry = next.get(g.moldableId)!;
    if (presentRids.length === 0 || now <= g.jobStart + timeout) {
      entry.start = now + 1;
      continue;
    }
    const keep = presentRids;
    entry.rids = keep;
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
  out: {
    ganttRows: GanttRow[];
    stateChanges: StateChange[];
    messages: Map<number, string>;
    containers: Map<string, SlotSet>;
    /** Quotas (when on): a reservation that would break them is refused. */
    quotas?: Quotas | null;
  },
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
    const st = schedTypes(j.types);
    const set = st.inner === null ? slots : out.containers.get(st.inner);
    if (set === undefined) {
      refuse(`This advance reservation cannot run: container ${st.inner} is not scheduled`);
      continue;
    }
    // As for any job: a timesharing reservation may use what jobs of its key hold, an
    // allow=<name> one what placeholder <name> holds (and consumes it).
    const sh: Sharing = {
      ts: timesharingKey(j.types, j.user, j.name),
      allow: st.allow,
      placeholder: st.placeholder,
    };
    const free = sh.ts !== null || sh.allow !== null
      ? set.freeOverShared(start, m.walltime + security, sh)
      : set.freeOver(start, m.walltime + security);
    const res: Itvs | null = free.length === 0 ? null : matchGroups(rs.hierarchy, groups, free);
    if (res === null) {
      refuse("This advance reservation cannot run");
      continue;
    }
    const overQuota = out.quotas?.admit(j, res, start, m.walltime + security, m.walltime) ?? null;
    if (overQuota !== null) {
      refuse(`This advance reservation cannot run: ${overQuota}`);
      continue;
    }
    set.occupy(start, start + m.walltime + security - 1, res, sh.ts, sh);
    const name = containerName(j.jobId, st.container);
    if (name !== null) out.containers.set(name, containerSlotSet(res, start, m.walltime));
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
/** A message as `jobs.message` holds it (what setJobMessage stores too). */
function storedMessage(text: string): string {
  return fitVarchar(text, JOB_MESSAGE_MAX);
}

async function saveMessages(tx: Queryable, messages: Map<number, string>): Promise<void> {
  if (messages.size === 0) return;
  const ids = [...messages.keys()];
  const texts = ids.map((id) => storedMessage(messages.get(id)!));
  await tx`
    UPDATE jobs SET message = x.m
    FROM unnest(${ids}::int[], ${texts}::text[]) AS x(id, m)
    WHERE jobs.job_id = x.id AND jobs.message IS DISTINCT FROM x.m`;
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
    WHERE j.state IN ${sql(CURRENT_STATES)}
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
