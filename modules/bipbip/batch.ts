/**
 * bipbip for a batch of invocations (`bipbip --stdin`, docs/architecture.md
 * §9): launches and end reports that come together are read, and change state, in a few
 * set-based statements for the whole batch instead of a dozen per job. A job is launched,
 * or its end handled, exactly as `bipbip()` does it; whatever is not the common case (an
 * interactive job, a server prologue or epilogue, a noop job, a killed job to resubmit, a
 * report for a job that does not run, a bad challenge, a node that does not answer...) goes
 * through `bipbip()` itself, one by one.
 */
import pLimit from "p-limit";
import { insertEvents, inTransaction, type NewEvent } from "../../lib/job/events.ts";
import { bipbip, type BipbipContext, descriptorOf, launchFailed } from "./bipbip.ts";
import { headHostOf } from "../../lib/job/head_host.ts";
import { endOfJobEvents } from "../../lib/job/end.ts";
import { type Job, normaliseJob, setJobsState, sortHosts } from "../../lib/job/jobs.ts";
import { RUNNING_LIKE_STATES, stateIn } from "../../lib/job/states.ts";
import { hasWaitingOarsub } from "../../lib/job/launch_notify.ts";
import { encodeOarexecDescriptor, type JobTypes, parseJobTypes } from "../../lib/protocol/mod.ts";
import { RecordingNotifier } from "../../lib/transport/notifier.ts";
import { GroupCommit } from "./group_commit.ts";

/** Runs one invocation's work under the batch's concurrency limit. */
export type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/** Reports an invocation done with its exit code (bipbip's: 0, 1 or 2). */
export type Done = (jobId: number, code: number) => Promise<void>;

/** An end report: `<job_id> <exit> <script exit> <challenge>`. */
interface EndReport {
  jobId: number;
  args: string[];
}

/**
 * What the batches of one run share: their common writes go by group commit (the end reports
 * to one endMany at a time, those that come while it runs together in the next; the Running
 * states of their launches likewise).
 */
interface BatchWriters {
  /** Returns the reports left to `bipbip()`. */
  endReports: GroupCommit<EndReport, EndReport[]>;
  running: StateBatch;
}

/**
 * `bipbip --stdin` (bipbip_commander's batch worker, modules/bipbip_commander/commander.ts): one invocation per input
 * line, a JSON list of the arguments `bipbip` takes, and `done(<job_id>, <code>)` reports each.
 * The lines that arrive together (in one read of the input) make a batch, handled in
 * set-based statements (below) while the next lines are read; at most
 * `concurrency` jobs are launched or handled one by one at once. Ends once the input ends and
 * every invocation is done; exit code: the highest of theirs (0 when there was none).
 */
export async function bipbipLines(
  ctx: BipbipContext,
  lines: AsyncIterable<string>,
  done: (jobId: number, code: number) => void | Promise<void>,
  concurrency = 32,
): Promise<number> {
  let worst = 0;
  const limit = pLimit(concurrency);
  const report = async (jobId: number, code: number) => {
    worst = Math.max(worst, code);
    await done(jobId, code);
  };
  const endReports = new GroupCommit<EndReport, EndReport[]>(async (all) => {
    // A job reported twice: the second report goes the one-by-one way, as within a batch.
    const seen = new Set<number>();
    const first: EndReport[] = [], again: EndReport[] = [];
    for (const e of all) {
      if (seen.has(e.jobId)) again.push(e);
      else {
        seen.add(e.jobId);
        first.push(e);
      }
    }
    return [...await endMany(ctx, first, report), ...again];
  });
  const writers: BatchWriters = { endReports, running: new StateBatch(ctx, "Running") };
  const batches = new Set<Promise<void>>();
  let batch: string[][] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const b = batch;
    batch = [];
    const p = bipbipBatch(ctx, b, limit, report, writers);
    batches.add(p);
    p.finally(() => batches.delete(p));
  };
  for await (const line of lines) {
    if (line.trim() === "") continue;
    let args: unknown;
    try {
      args = JSON.parse(line);
    } catch {
      args = null;
    }
    if (!Array.isArray(args) || !args.every((a) => typeof a === "string") || args.length === 0) {
      ctx.log.error("bad invocation line {line}", { line: JSON.stringify(line.slice(0, 200)) });
      worst = Math.max(worst, 1);
      continue;
    }
    batch.push(args as string[]);
    // The lines already read come one after the other without a timer turn between them.
    timer ??= setTimeout(flush, 0);
  }
  if (batch.length > 0) flush();
  while (batches.size > 0) await Promise.all(batches);
  return worst;
}

/**
 * Runs every invocation of the batch and reports each one done. Invocations are lists of
 * bipbip's arguments, already checked to be non-empty lists of strings. `writers` (whose
 * `done` must be this one) are shared with other batches; by default, the batch's own.
 */
export async function bipbipBatch(
  ctx: BipbipContext,
  invocations: string[][],
  limit: Limit,
  done: Done,
  writers?: BatchWriters,
): Promise<void> {
  const launches: number[] = [];
  const ends: EndReport[] = [];
  const single: string[][] = [];
  const seen = new Set<number>();
  for (const args of invocations) {
    const id = /^\d{1,9}$/.test(args[0]) ? Number(args[0]) : NaN;
    // A job twice in one batch (not from bipbip_commander, which runs one at a time per
    // job): the second one waits for the first, as it would have.
    if (Number.isNaN(id) || seen.has(id)) {
      single.push(args);
      continue;
    }
    seen.add(id);
    if (args.length === 1) launches.push(id);
    else if (args.length === 4) ends.push({ jobId: id, args: args.slice(1) });
    else single.push(args);
  }
  const one = (args: string[]) => limit(() => runOne(ctx, args, done));
  const bulk = async (ids: number[], run: () => Promise<string[][]>) => {
    let rest: string[][];
    try {
      rest = await run();
    } catch (e) {
      // The batch's reads or writes failed (the database is away): every job of it gets 2,
      // its launch comes again from the scheduler, its report from oarexec.
      ctx.log.error("batch of {n} jobs failed: {error}", {
        n: ids.length,
        error: (e as Error)?.stack ?? String(e),
      });
      await Promise.all(ids.map((id) => done(id, 2)));
      return;
    }
    await Promise.all(rest.map(one));
  };
  await Promise.all([
    launches.length
      ? bulk(launches, () => launchMany(ctx, launches, limit, done, writers?.running))
      : null,
    ends.length
      ? bulk(ends.map((e) => e.jobId), () => handleEnds(ctx, ends, done, writers?.endReports))
      : null,
  ]);
  for (const args of single) await one(args);
}

/** The batch's end reports, through the group commit when there is one; returns the rest. */
async function handleEnds(
  ctx: BipbipContext,
  ends: EndReport[],
  done: Done,
  endReports?: BatchWriters["endReports"],
): Promise<string[][]> {
  let rest: EndReport[];
  if (endReports === undefined) rest = await endMany(ctx, ends, done);
  else {
    const mine = new Set(ends);
    rest = (await endReports.submit(ends)).filter((e) => mine.has(e));
  }
  return rest.map((e) => [String(e.jobId), ...e.args]);
}

async function runOne(ctx: BipbipContext, args: string[], done: Done): Promise<void> {
  let code: number;
  try {
    code = await bipbip(ctx, args);
  } catch (e) {
    ctx.log.error("bipbip {args} failed: {error}", {
      args: args.join(" "),
      error: (e as Error)?.stack ?? String(e),
    });
    // Not 1 ("nothing to do"): bipbip_commander acknowledges an oarexec report on 0 or 1
    // only, and a report whose handling failed (database down...) must come again.
    code = 2;
  }
  const id = Number(args[0]);
  if (Number.isInteger(id)) await done(id, code);
}

// ---------------------------------------------------------------------------------------------
// launches

interface LaunchData {
  job: Job;
  challenge: string | null;
  types: JobTypes;
  resources: Record<string, unknown>[];
  /** Default-type hosts with an address, sorted: the first is the head node. */
  hosts: string[];
  walltime: number;
}

/** What bipbip reads before a launch, for every job of the batch, in two statements. */
async function loadLaunchData(ctx: BipbipContext, ids: number[]): Promise<Map<number, LaunchData>> {
  const { sql } = ctx;
  const idsText = "{" + ids.join(",") + "}";
  const [jobs, resources] = await Promise.all([
    sql<(Job & { oar_challenge: string | null; oar_types: string[]; oar_walltime: number })[]>`
      SELECT j.*, c.challenge AS oar_challenge, m.moldable_walltime AS oar_walltime,
        COALESCE((SELECT array_agg(t.type::text ORDER BY t.job_type_id) FROM job_types t
                  WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT'), '{}') AS oar_types
      FROM jobs j
      LEFT JOIN challenges c ON c.job_id = j.job_id
      LEFT JOIN moldable_job_descriptions m ON m.moldable_id = j.assigned_moldable_job
      WHERE j.job_id = ANY(${idsText}::int[])`,
    sql<(Record<string, unknown> & { oar_job_id: number })[]>`
      SELECT j.job_id AS oar_job_id, r.*
      FROM jobs j
      JOIN assigned_resources ar ON ar.moldable_job_id = j.assigned_moldable_job
      JOIN resources r ON r.resource_id = ar.resource_id
      -- ::text: as in jobCurrentHosts, the index on the index column misleads the planner.
      WHERE j.job_id = ANY(${idsText}::int[]) AND ar.assigned_resource_index::text = 'CURRENT'
      ORDER BY j.job_id, r.resource_id`,
  ]);
  const out = new Map<number, LaunchData>();
  for (const row of jobs) {
    const { oar_challenge, oar_types, oar_walltime, ...job } = row;
    out.set(Number(row.job_id), {
      job: normaliseJob(job as Job),
      challenge: oar_challenge,
      types: parseJobTypes(oar_types),
      resources: [],
      hosts: [],
      walltime: Number(oar_walltime ?? 0),
    });
  }
  for (const row of resources) {
    const { oar_job_id, ...r } = row;
    const d = out.get(Number(oar_job_id));
    if (d) d.resources.push({ ...r, resource_id: Number(r.resource_id) });
  }
  for (const d of out.values()) {
    // As jobCurrentHosts: distinct, type default, a non-empty address, byte order.
    const hosts = new Set<string>();
    for (const r of d.resources) {
      if (r.type === "default" && typeof r.network_address === "string" && r.network_address) {
        hosts.add(r.network_address);
      }
    }
    d.hosts = sortHosts([...hosts]);
  }
  return out;
}

/**
 * Launches the common jobs of the batch; returns the invocations left to `bipbip()`. The
 * Launching and Running states are written for many jobs at once; each launch runs on its own.
 */
async function launchMany(
  ctx: BipbipContext,
  ids: number[],
  limit: Limit,
  done: Done,
  running = new StateBatch(ctx, "Running"),
): Promise<string[][]> {
  const { sql, config, log } = ctx;
  const data = await loadLaunchData(ctx, ids);
  const serverPrologue = config.str("SERVER_PROLOGUE_EXEC_FILE").trim() !== "";
  let common = ids.filter((id) => {
    const d = data.get(id);
    return d !== undefined && d.job.state === "toLaunch" && d.challenge !== null &&
      !hasWaitingOarsub(d.job) && !serverPrologue && !("noop" in d.types);
  });
  if (ctx.launcher.kind === "ssh") {
    // The node check, once for every host of the batch; a job on a host that does not
    // answer takes bipbip's own way (events, Suspected nodes, a reservation's partial start).
    const checked = common.filter((id) => !isSpecial(data.get(id)!.types));
    const hosts = [...new Set(checked.flatMap((id) => data.get(id)!.hosts))];
    if (hosts.length > 0) {
      const bad = new Set(await (ctx.unreachable ?? ((h) => ctx.launcher.unreachable(h)))(hosts));
      if (bad.size > 0) {
        common = common.filter((id) =>
          isSpecial(data.get(id)!.types) || !data.get(id)!.hosts.some((h) => bad.has(h))
        );
      }
    }
  }
  if (common.length > 0 && config.str("JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD") !== "") {
    log.warn("JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD is set but cpusets are not supported");
  }
  const commonSet = new Set(common);
  const rest = ids.filter((id) => !commonSet.has(id)).map((id) => [String(id)]);
  const launching = new Set(await setJobsState(sql, ctx.notifier, common, "Launching"));
  await Promise.all(common.map((id) =>
    limit(async () => {
      if (!launching.has(id)) {
        log.warn("[{id}] Job already treated or deleted in the meantime", { id });
        return await done(id, 1);
      }
      let code = 0;
      try {
        await launchOne(ctx, data.get(id)!, running);
      } catch (e) {
        log.error("bipbip {id} failed: {error}", { id, error: (e as Error)?.stack ?? String(e) });
        code = 2;
      }
      await done(id, code);
    })
  ));
  return rest;
}

function isSpecial(types: JobTypes): boolean {
  return "deploy" in types || "cosystem" in types;
}

/** One job, once it is Launching: oarexec on its head node, then Running or its failure. */
async function launchOne(ctx: BipbipContext, d: LaunchData, running: StateBatch): Promise<void> {
  const { job, types, hosts } = d;
  const head = headHostOf(ctx.config, types, hosts);
  const descriptor = descriptorOf(ctx, { ...d, challenge: d.challenge!, head });
  ctx.log.info("[{id}] launching oarexec on {head} ({kind})", {
    id: job.job_id,
    head,
    kind: ctx.launcher.kind,
  });
  const r = await ctx.launcher.launch(head, encodeOarexecDescriptor(descriptor));
  if (r.rendezvous) await running.add(job.job_id);
  else await launchFailed(ctx, job, head, hosts, r);
}

/**
 * State changes of many jobs that come one after the other (the rendezvous of a batch's
 * launches), written together by one `setJobsState` at a time (group commit).
 */
class StateBatch {
  readonly #group: GroupCommit<number, void>;

  constructor(readonly ctx: BipbipContext, readonly state: "Running") {
    this.#group = new GroupCommit(async (ids) => {
      await setJobsState(ctx.sql, ctx.notifier, ids, state);
    });
  }

  add(id: number): Promise<void> {
    return this.#group.submit([id]);
  }
}

// ---------------------------------------------------------------------------------------------
// end reports

/**
 * Handles the common end reports of the batch; returns the reports left to `bipbip()`.
 * What `checkEndOfJob` and the finishing sequence do, for every job at once and in ONE
 * transaction (a crash cannot leave a job Finishing without the event that ends it): the
 * jobs go Finishing, get their stop time and exit code, and their end events.
 */
async function endMany(
  ctx: BipbipContext,
  ends: EndReport[],
  done: Done,
): Promise<EndReport[]> {
  const { sql, config, log } = ctx;
  const idsText = "{" + ends.map((e) => e.jobId).join(",") + "}";
  const rows = await sql<
    (Pick<Job, "job_id" | "state" | "job_user" | "launching_directory"> & {
      challenge: string | null;
      hosts: string[];
    })[]
  >`
    SELECT j.job_id, j.state, j.job_user, j.launching_directory, c.challenge,
      COALESCE((SELECT array_agg(DISTINCT r.network_address::text)
                FROM assigned_resources ar JOIN resources r ON r.resource_id = ar.resource_id
                WHERE ar.moldable_job_id = j.assigned_moldable_job
                  AND ar.assigned_resource_index::text = 'CURRENT'
                  AND r.type = 'default' AND r.network_address <> ''), '{}') AS hosts
    FROM jobs j LEFT JOIN challenges c ON c.job_id = j.job_id
    WHERE j.job_id = ANY(${idsText}::int[])`;
  const byId = new Map(rows.map((r) => [Number(r.job_id), r]));
  // The server epilogue and the node check at job end run job by job, in bipbip().
  const perJobSequence = config.str("SERVER_EPILOGUE_EXEC_FILE").trim() !== "" ||
    (config.bool("ACTIVATE_PINGCHECKER_AT_JOB_END") && ctx.unreachable !== undefined);
  const dir = config.str("OAREXEC_DIRECTORY");
  const common: { jobId: number; scriptExit: number | null; events: NewEvent[]; term: boolean }[] =
    [];
  const rest: EndReport[] = [];
  for (const end of ends) {
    const { jobId, args } = end;
    const row = byId.get(jobId);
    const [exitArg, scriptArg, challenge] = args;
    if (
      perJobSequence || !row || !stateIn(RUNNING_LIKE_STATES, row.state) ||
      !/^\d{1,9}$/.test(exitArg) ||
      row.challenge === null || row.challenge !== challenge
    ) {
      rest.push(end);
      continue;
    }
    const hosts = sortHosts([...row.hosts]);
    const r = endOfJobEvents(Number(exitArg), { ...row, job_id: jobId }, hosts, dir);
    if (r.killed) {
      // A besteffort job to resubmit, maybe: bipbip() knows how.
      rest.push(end);
      continue;
    }
    const scriptExit = /^\d{1,10}$/.test(scriptArg) ? Number(scriptArg) : null;
    common.push({ jobId, scriptExit, events: r.events, term: r.term });
  }
  if (common.length > 0) {
    const recorded = new RecordingNotifier();
    const finishing = await inTransaction(sql, async (tx) => {
      const changed = new Set(
        await setJobsState(tx, recorded, common.map((c) => c.jobId), "Finishing"),
      );
      const handled = common.filter((c) => changed.has(c.jobId));
      if (handled.length === 0) return handled;
      const codes = JSON.stringify(handled.map((c) => [c.jobId, c.scriptExit]));
      await tx`
        UPDATE jobs SET stop_time = GREATEST(EXTRACT(EPOCH FROM now())::int, jobs.start_time),
          exit_code = COALESCE(x.code, jobs.exit_code)
        FROM (SELECT (v->>0)::int AS id, (v->>1)::int AS code
              FROM json_array_elements(${codes}::text::json) AS a(v)) x
        WHERE jobs.job_id = x.id`;
      await insertEvents(tx, handled.flatMap((c) => c.events));
      return handled;
    });
    for (const cmd of recorded.almightyCommands) ctx.notifier.almighty(cmd);
    const handled = new Set(finishing.map((c) => c.jobId));
    for (const c of common) {
      if (!handled.has(c.jobId)) {
        log.info("[{id}] previously killed or Terminated: end of job ignored", { id: c.jobId });
      }
    }
    if (finishing.some((c) => c.events.length > 0)) ctx.notifier.almighty("ChState");
    if (finishing.some((c) => c.term)) ctx.notifier.almighty("Term");
    ctx.notifier.almighty("BipBip");
    await Promise.all(common.map((c) => done(c.jobId, 0)));
  }
  return rest;
}
