/**
 * The round's first step: its settings and its state, and the reads that go on other
 * connections while the round's transaction reads the Gantt (reads of committed rows only):
 * the resource set, the queues, and the waiting jobs of the first group to schedule.
 */
import { dbNow } from "../../../lib/db/client.ts";
import { fairshareSettings } from "../kamelot/karma.ts";
import { multifactorOrdering } from "../kamelot/priority_jobs.ts";
import { loadResourceSet } from "../kamelot/resource_set.ts";
import { notifyOarsub } from "../../../lib/job/oarsub_notify.ts";
import { type GroupJobs, groupJobs, queueGroups, type QueueRow } from "./group_jobs.ts";
import { deferred, type RoundContext, type RoundState } from "./round_state.ts";

export async function beginRound(ctx: RoundContext): Promise<RoundState> {
  const { sql, config, log } = ctx;
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

  const resourceSetLoad = loadResourceSet(sql, config, log);
  resourceSetLoad.catch(() => {}); // awaited by readGantt; a failure surfaces there

  const priority = config.str("JOB_PRIORITY").trim().toUpperCase();
  if (!["", "FIFO", "FAIRSHARE", "MULTIFACTOR"].includes(priority)) {
    log.warn("JOB_PRIORITY={p} is not supported; jobs are ordered FIFO", { p: priority });
  }
  const fairshare = priority === "FAIRSHARE"
    ? fairshareSettings(config, (msg) => log.warn("{msg}", { msg }))
    : null;
  const multifactor = priority === "MULTIFACTOR"
    ? multifactorOrdering(config, resourceSetLoad, (msg) => log.warn("{msg}", { msg }))
    : null;
  const queuesLoad = sql<QueueRow[]>`
    SELECT queue_name, priority, scheduler_policy, state FROM queues
    ORDER BY priority DESC, queue_name`;
  const prefetch: Promise<{ key: string; jobs: GroupJobs } | null> = (async () => {
    if (external) return null;
    for (const group of queueGroups(await queuesLoad)) {
      const names = group.filter((q) => q.state === "Active").map((q) => q.queue_name);
      if (names.length === 0) continue;
      const jobs = await groupJobs(sql, names, now, maxJobs, fairshare, multifactor);
      return { key: names.join("\u0000"), jobs };
    }
    return null;
  })();
  prefetch.catch(() => {}); // awaited by scheduleQueueGroups; a failure surfaces there
  return {
    sql,
    config,
    log,
    notifier: ctx.notifier,
    oarsub: ctx.oarsub ?? notifyOarsub,
    signaller: ctx.signaller,
    now,
    security,
    killDelay,
    maxJobs,
    arTimeout,
    external,
    fairshare,
    multifactor,
    timings,
    lap,
    resourceSetLoad,
    queuesLoad,
    prefetch,
    karmas: new Map(),
    skipped: new Map(),
    messages: new Map(),
    shown: new Map(),
    stateChanges: [],
    notActive: [],
    exitCode: 0,
    fragged: [],
    launched: [],
    visu: { gate: deferred(), copy: deferred(), deltaReady: deferred(), done: null },
  };
}
