/**
 * Jobs left in a transient state by a process that died (docs/differences.md §18: no job stays
 * stuck). Run by sarko, so it works from cron too:
 *
 * - Launching for longer than a launch can take (2×TIMEOUT_SSH, the rendezvous limit, plus a
 *   margin): the bipbip that launched it is gone. The job is fragged like any other, so Leon
 *   signals a possibly running oarexec and the usual kill/exterminate path ends it in Error;
 *   nothing is left running on resources the scheduler would hand out again.
 * - Finishing for longer than the finishing sequence can take, with no unchecked event left for
 *   it: its bipbip died between "Finishing" and writing the events. An error event closes it.
 *   With unchecked events, node_change_state was never told to look (its bipbip died between
 *   the commit and the notification, whose report was acknowledged): it is asked now.
 * - Running with its oarexec gone (killed, or its node rebooted): no report will ever come.
 *   The job is exterminated (`checkLostOarexecs` below).
 *
 * toLaunch jobs need nothing here: the meta-scheduler re-notifies them every round.
 */
import { join } from "node:path";
import type { Config } from "../../lib/runtime/config.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { addEvent } from "../../lib/job/events.ts";
import { fragJob, FragResult, setFragState } from "../../lib/job/frag.ts";
import type { HeldJobs } from "../../lib/launch/held_jobs.ts";
import type { Logger } from "../../lib/runtime/log.ts";

/** Extra seconds granted beyond the limits the modules themselves enforce. */
const MARGIN = 60;
/** The event type recording why sarko acted (not one node_change_state acts on). */
export const STUCK_JOB_EVENT = "SARKO_STUCK_JOB";

export function launchingLimit(config: Config): number {
  return 2 * config.int("TIMEOUT_SSH") + MARGIN;
}

export function finishingLimit(config: Config): number {
  // Server epilogue, then the ping at job end (2×TIMEOUT_SSH), then the events.
  return config.int("SERVER_PROLOGUE_EPILOGUE_TIMEOUT") + 2 * config.int("TIMEOUT_SSH") + MARGIN;
}

/** Jobs in `state` since before `before` (their open state log), not yet fragged. */
async function stuckSince(sql: Queryable, state: string, before: number): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`
    SELECT j.job_id FROM jobs j
    JOIN job_state_logs l ON l.job_id = j.job_id AND l.date_stop = 0 AND l.job_state = ${state}
    WHERE j.state::text = ${state} AND l.date_start < ${before}
    ORDER BY j.job_id`;
  return rows.map((r) => Number(r.job_id));
}

/**
 * Handles stuck jobs; returns true when a job was fragged (Leon has work).
 * `user` is the account fragging (oar).
 */
export async function recoverStuckJobs(
  ctx: { sql: Queryable; config: Config; log: Logger; notifyChState: () => void },
  now: number,
  user: string,
): Promise<boolean> {
  let fragged = false;
  let events = false;
  for (const id of await stuckSince(ctx.sql, "Launching", now - launchingLimit(ctx.config))) {
    // -2: fragged already (by an earlier run, or oardel): the kill path is under way.
    if (await fragJob(ctx.sql, id, user) !== FragResult.ok) continue;
    await addEvent(ctx.sql, {
      type: STUCK_JOB_EVENT,
      jobId: id,
      description: `[sarko] job ${id} stuck in Launching: its launch never completed; fragged`,
    });
    ctx.log.warn("job {id} stuck in Launching; fragged", { id });
    fragged = true;
  }
  const finishing = await stuckSince(ctx.sql, "Finishing", now - finishingLimit(ctx.config));
  const unchecked: number[] = [];
  for (const id of finishing) {
    const [pending] = await ctx.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM event_logs WHERE job_id = ${id} AND to_check = 'YES'`;
    if (pending.n > 0) {
      unchecked.push(id);
      continue;
    }
    await addEvent(ctx.sql, {
      type: "SWITCH_INTO_ERROR_STATE",
      jobId: id,
      description: `[sarko] job ${id} stuck in Finishing: its end was never recorded`,
    });
    ctx.log.warn("job {id} stuck in Finishing; switching it to Error", { id });
    events = true;
  }
  if (unchecked.length > 0) {
    ctx.log.warn(
      "jobs {ids} stuck in Finishing with events never checked; asking node_change_state",
      {
        ids: unchecked.join(","),
      },
    );
    events = true;
  }
  if (events) ctx.notifyChState();
  return fragged;
}

// ---------------------------------------------------------------------------------------------
// Running jobs whose oarexec is gone

/**
 * What sarko remembers between runs (it is a one-shot, run every few seconds by almighty, or by
 * cron): when it last asked every host, and since when each suspect job's oarexec was seen
 * gone. Kept in OAR_RUNTIME_DIRECTORY; runs are serialised by sarko's module lock.
 */
export interface LostOarexecState {
  /** DB time of the last full check. */
  checked: number;
  /** job id → DB time its oarexec was first seen gone. */
  gone: Record<string, number>;
}

export const LOST_OAREXEC_STATE_FILE = "sarko_oarexec_check.json";

export interface LostOarexecContext {
  sql: Queryable;
  config: Config;
  log: Logger;
  /** Asks `host` about its jobs' oarexecs (the launcher's `heldJobs`). */
  heldJobs: (host: string, jobIds: number[]) => Promise<HeldJobs | null>;
  /** The job's head node, where its oarexec runs. */
  headHost: (jobId: number) => Promise<string>;
  /** Where the state lives; null: nowhere, so no check (it could never confirm anything). */
  stateDir: string | null;
}

async function loadState(file: string): Promise<LostOarexecState> {
  try {
    const s = JSON.parse(await Deno.readTextFile(file));
    if (typeof s?.checked === "number" && s.gone && typeof s.gone === "object") {
      return { checked: s.checked, gone: { ...s.gone } };
    }
  } catch { /* none yet, or unreadable: start afresh */ }
  return { checked: 0, gone: {} };
}

/** Hosts asked at once: a big cluster is asked in waves, not all in one burst. */
const HOSTS_AT_ONCE = 32;

/**
 * The lost-oarexec check. A job counts once it has been Running for OAREXEC_CHECK_MIN_AGE
 * (its oarexec writes its pid file just after the rendezvous) and is not fragged (the kill path
 * already handles it). Every OAREXEC_CHECK_INTERVAL at most, each head node with an Alive
 * resource is asked, in one command, about all its jobs (lib/launch/held_jobs.ts), up to 32
 * hosts at once and within about 2×TIMEOUT_SSH in all; a host that cannot be asked answers
 * nothing, and nothing is concluded from it. A job seen gone is asked about again once
 * OAREXEC_LOST_GRACE has passed (only those hosts), and ended only if it is still Running and
 * still gone then: oarexec keeps its pid file until its report is acknowledged, so a report on
 * its way wins, as does one from OAR's own oarexec (which drops the file before reporting).
 *
 * Ending it: the job is fragged and goes straight to LEON_EXTERMINATE (a TERM to a gone oarexec
 * would reach nobody), with a STUCK_JOB_EVENT saying why; Leon then moves it to Finishing and
 * runs the finishing sequence with EXTERMINATE_JOB, which node_change_state turns into Error
 * and into suspicion of the job's nodes — whatever the user's processes left there is not known,
 * as for any exterminated job. Returns true when a job was fragged (Leon has work).
 */
export async function checkLostOarexecs(
  ctx: LostOarexecContext,
  now: number,
  user: string,
): Promise<boolean> {
  const interval = ctx.config.int("OAREXEC_CHECK_INTERVAL");
  if (interval <= 0 || ctx.stateDir === null) return false;
  try {
    if (!(await Deno.stat(ctx.stateDir)).isDirectory) throw new Error("not a directory");
  } catch (e) {
    ctx.log.debug("no state directory {dir} ({error}): oarexecs are not checked", {
      dir: ctx.stateDir,
      error: String(e),
    });
    return false;
  }
  const minAge = ctx.config.int("OAREXEC_CHECK_MIN_AGE");
  const grace = ctx.config.int("OAREXEC_LOST_GRACE");
  const file = join(ctx.stateDir, LOST_OAREXEC_STATE_FILE);
  const state = await loadState(file);
  const rows = await ctx.sql<{ job_id: number }[]>`
    SELECT j.job_id FROM jobs j
    JOIN job_state_logs l ON l.job_id = j.job_id AND l.date_stop = 0 AND l.job_state = 'Running'
    WHERE j.state = 'Running' AND l.date_start <= ${now - minAge}
      AND NOT EXISTS (SELECT 1 FROM frag_jobs f WHERE f.frag_id_job = j.job_id)
    ORDER BY j.job_id`;
  const running = new Set(rows.map((r) => Number(r.job_id)));
  // Jobs that ended (or were fragged) since are forgotten.
  for (const id of Object.keys(state.gone)) if (!running.has(Number(id))) delete state.gone[id];
  const full = now - state.checked >= interval;
  const toAsk = full
    ? [...running]
    : Object.entries(state.gone).filter(([, since]) => now - since >= grace).map(([id]) =>
      Number(id)
    );
  if (toAsk.length === 0) {
    await saveState(ctx, file, state);
    return false;
  }
  const byHost = new Map<string, number[]>();
  for (const id of toAsk) {
    const host = await ctx.headHost(id);
    byHost.set(host, [...(byHost.get(host) ?? []), id]);
  }
  const answers: HeldJobs = new Map();
  // Nodes with no Alive resource are not asked: a Dead or Absent node's jobs are fragged by
  // the node-state path, and a Suspected node would likely cost a connection timeout. Hosts
  // that are not resources (COSYSTEM_HOSTNAME, DEPLOY_HOSTNAME) are asked.
  const known = await ctx.sql<{ host: string; alive: boolean }[]>`
    SELECT network_address AS host, bool_or(state = 'Alive') AS alive FROM resources
    WHERE network_address = ANY(${[...byHost.keys()]}::text[]) GROUP BY network_address`;
  const notAlive = new Set(known.filter((k) => !k.alive).map((k) => k.host));
  const hosts = [...byHost.keys()].filter((h) => !notAlive.has(h));
  // almighty waits for sarko: the pass takes at most about one host's limit (the launcher's,
  // 2×TIMEOUT_SSH), hosts being asked in parallel; those left are asked at the next run.
  const passEnd = Date.now() + 2 * ctx.config.int("TIMEOUT_SSH") * 1000;
  let skipped = 0;
  for (let i = 0; i < hosts.length; i += HOSTS_AT_ONCE) {
    if (Date.now() > passEnd) {
      skipped = hosts.length - i;
      ctx.log.warn("oarexec check: {n} host(s) left for the next run (time is up)", { n: skipped });
      break;
    }
    await Promise.all(
      hosts.slice(i, i + HOSTS_AT_ONCE).map(async (host) => {
        const ids = byHost.get(host)!;
        let held: HeldJobs | null = null;
        try {
          held = await ctx.heldJobs(host, ids);
        } catch (e) {
          ctx.log.warn("cannot check the oarexecs on {host}: {error}", { host, error: String(e) });
        }
        if (held === null) {
          ctx.log.info("cannot ask {host} about its jobs' oarexecs", { host });
          return;
        }
        for (const [id, alive] of held) answers.set(id, alive);
      }),
    );
  }
  if (full && skipped === 0) state.checked = now;
  const lost: number[] = [];
  for (const [id, alive] of answers) {
    const key = String(id);
    if (alive) delete state.gone[key];
    else if (state.gone[key] === undefined) {
      state.gone[key] = now;
      ctx.log.info("job {id}: its oarexec is not seen; checking again in {grace} s", { id, grace });
    } else if (now - state.gone[key] >= grace) lost.push(id);
  }
  let fragged = false;
  for (const id of lost) {
    const since = now - state.gone[String(id)];
    delete state.gone[String(id)];
    if (await endLostJob(ctx, id, user, since)) fragged = true;
  }
  await saveState(ctx, file, state);
  return fragged;
}

async function saveState(ctx: LostOarexecContext, file: string, s: LostOarexecState) {
  try {
    await Deno.writeTextFile(`${file}.tmp`, JSON.stringify(s));
    await Deno.rename(`${file}.tmp`, file);
  } catch (e) {
    ctx.log.warn("cannot save {file}: {error}", { file, error: String(e) });
  }
}

async function endLostJob(
  ctx: LostOarexecContext,
  id: number,
  user: string,
  since: number,
): Promise<boolean> {
  const [job] = await ctx.sql<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${id}`;
  if (job?.state !== "Running") return false; // its report came in the meantime
  // -2: fragged meanwhile (oardel, walltime): the kill path is under way already.
  if (await fragJob(ctx.sql, id, user) !== FragResult.ok) return false;
  await setFragState(ctx.sql, id, "LEON_EXTERMINATE", "LEON");
  const host = await ctx.headHost(id);
  await addEvent(ctx.sql, {
    type: STUCK_JOB_EVENT,
    jobId: id,
    description: `[sarko] job ${id} Running without its oarexec on ${host}: no pid file or ` +
      `no such process at two checks ${since} s apart, and no report; exterminated`,
  });
  ctx.log.warn("job {id}: its oarexec on {host} is gone and never reported; exterminating it", {
    id,
    host,
  });
  return true;
}
