/**
 * Admission and insertion of a job submission (OAR's add_micheline_jobs, without admission
 * rules written in Python): queue checks, OAR's default rules (besteffort ⇔ queue besteffort,
 * admin queue for root/oar, resource type default), a feasibility check of every moldable
 * against the platform, then every row of every job of the submission in ONE transaction
 * (jobs, challenges, moldables, resource groups and descriptions, types, dependencies, first
 * state log). Ids are drawn from the tables' sequences first, so rows are linked without
 * relying on the order of RETURNING.
 */
import { ADMIN_USERS } from "../cli/identity.ts";
import type { Queryable, Sql } from "../db/client.ts";
import { dbNow } from "../db/client.ts";
import { fitVarchar } from "../job/events.ts";
import { JOB_MESSAGE_MAX } from "../job/jobs.ts";
import { andAll, type Expr, mentionsColumn, parseExpression, toSql } from "../properties/expr.ts";
import type { ColumnSet } from "../properties/expr.ts";
import { type Dependency, SubmissionError } from "./checks.ts";
import { estimateMoldable } from "./estimate.ts";
import type { KeyPair } from "./job_key.ts";
import { newChallenge } from "./job_key.ts";
import type { Moldable } from "./resource_request.ts";
import { formatDuration } from "./walltime.ts";

export interface JobRequest {
  user: string;
  /** One command per job of the submission (one job unless an array). */
  commands: string[];
  jobType: "PASSIVE" | "INTERACTIVE";
  infoType: string | null;
  /** null: the default queue (or besteffort for besteffort jobs). */
  queue: string | null;
  project: string;
  name: string | null;
  properties: Expr | null;
  moldables: Moldable[];
  types: string[];
  dependencies: Dependency[];
  launchingDirectory: string;
  stdout: string | null;
  stderr: string | null;
  notify: string | null;
  checkpoint: number;
  signal: number;
  hold: boolean;
  /** Epoch seconds of an advance reservation, or null. */
  reservationDate: number | null;
  initialRequest: string;
  /** Seconds used for moldables that give no walltime. */
  defaultWalltime: number;
  /** The admission limits of oar.conf (0: none); null for root and oar. */
  limits?: SubmissionLimits | null;
}

export interface Submitted {
  jobIds: number[];
  arrayId: number;
  /** Estimated resources and walltime of each moldable (OAR prints them). */
  estimates: { resources: number | null; walltime: number }[];
}

const TYPE_DEFAULT: Expr = {
  k: "cmp",
  op: "=",
  l: { k: "col", name: "type", kind: "text" },
  r: { k: "str", v: "default" },
};

/** OAR's "type = 'default'" rule: a group naming no type asks for default resources. */
export function groupPropertyWithType(group: Expr | null, job: Expr | null): Expr | null {
  if ((group && mentionsColumn(group, "type")) || (job && mentionsColumn(job, "type"))) {
    return group;
  }
  return andAll([group, TYPE_DEFAULT]);
}

/** OAR's job message: `R=<n>,W=<H:MM:SS>,J=<B|I|R>[,N=..][,Q=..][,P=..][,T=a|b]`. */
export function jobMessage(
  req: JobRequest,
  queue: string,
  resources: number,
  walltime: number,
): string {
  const mode = req.reservationDate !== null ? "R" : req.jobType === "INTERACTIVE" ? "I" : "B";
  const parts = [`R=${resources}`, `W=${formatDuration(walltime)}`, `J=${mode}`];
  if (req.name) parts.push(`N=${req.name}`);
  if (queue !== "default" && queue !== "besteffort") parts.push(`Q=${queue}`);
  if (req.project !== "default") parts.push(`P=${req.project}`);
  if (req.types.length) parts.push(`T=${req.types.join("|")}`);
  return fitVarchar(parts.join(","), JOB_MESSAGE_MAX);
}

async function checkQueue(sql: Queryable, queue: string): Promise<void> {
  const rows = await sql<{ state: string }[]>`
    SELECT state FROM queues WHERE queue_name = ${queue}`;
  if (rows.length === 0) throw new SubmissionError(`queue ${queue} does not exist`, -8);
  if (rows[0].state !== "Active") {
    throw new SubmissionError(`queue ${queue} is not active: it accepts no job`, -8);
  }
}

async function checkInner(sql: Queryable, types: string[]): Promise<void> {
  for (const t of types) {
    const m = /^inner=(\d+)$/.exec(t);
    if (!m) continue;
    const rows = await sql<{ state: string; container: boolean }[]>`
      SELECT j.state, EXISTS (
        SELECT 1 FROM job_types t WHERE t.job_id = j.job_id AND t.types_index = 'CURRENT'
          AND (t.type = 'container' OR t.type LIKE 'container=%')) AS container
      FROM jobs j WHERE j.job_id = ${Number(m[1])}`;
    if (rows.length === 0 || !rows[0].container) {
      throw new SubmissionError(`inner: job ${m[1]} is not a container job`, -2);
    }
    if (rows[0].state === "Terminated" || rows[0].state === "Error") {
      throw new SubmissionError(`inner: container job ${m[1]} is already finished`, -2);
    }
  }
}

/** Applies OAR's default admission rules; returns the queue and types to store. */
export function defaultRules(req: JobRequest): { queue: string; types: string[] } {
  let queue = req.queue ?? "default";
  const types = [...req.types];
  if (!/^[a-zA-Z0-9_-]+$/.test(req.user)) {
    throw new SubmissionError(`invalid username: ${req.user}`, -11);
  }
  if (queue === "admin" && !ADMIN_USERS.has(req.user)) {
    throw new SubmissionError("only oar or root can submit jobs in the admin queue", -2);
  }
  // Quotas exempt a no_quotas job (modules/meta_sched/kamelot/quotas.ts): only an admin may ask for that.
  if (
    types.some((t) => t === "no_quotas" || t.startsWith("no_quotas=")) && !ADMIN_USERS.has(req.user)
  ) {
    throw new SubmissionError("only oar or root can submit no_quotas jobs", -2);
  }
  if (types.includes("besteffort")) {
    if (req.reservationDate !== null) {
      throw new SubmissionError("a besteffort job cannot be an advance reservation", -2);
    }
    queue = "besteffort";
  } else if (queue === "besteffort") {
    types.push("besteffort");
  }
  return { queue, types };
}

/**
 * Admits and inserts the jobs; returns their ids (ascending: array_index 1..N) and the array
 * id (the first job's id). Throws SubmissionError on refusal; nothing is written then.
 */
/** How much one user may put in the queues (OARSUB_MAX_* in oar.conf; 0 is no limit). */
export interface SubmissionLimits {
  maxArray: number;
  maxWaitingPerUser: number;
  maxWaitingPerQueue: number;
}

/**
 * One user's flood (100,000 jobs) would delay everyone's jobs for minutes: the jobs already
 * waiting (Waiting or Hold) plus this submission must fit the limits.
 */
async function checkLimits(
  sql: Queryable,
  req: JobRequest,
  queue: string,
  n: number,
): Promise<void> {
  const l = req.limits;
  if (!l) return;
  if (l.maxArray > 0 && n > l.maxArray) {
    throw new SubmissionError(
      `An array of job may have at most ${l.maxArray} jobs (OARSUB_MAX_ARRAY_SIZE).`,
      6,
    );
  }
  if (l.maxWaitingPerUser <= 0 && l.maxWaitingPerQueue <= 0) return;
  const [c] = await sql<{ user_jobs: number; queue_jobs: number }[]>`
    SELECT count(*) FILTER (WHERE job_user = ${req.user})::int AS user_jobs,
      count(*) FILTER (WHERE queue_name = ${queue})::int AS queue_jobs
    FROM jobs WHERE state IN ('Waiting', 'Hold')`;
  if (l.maxWaitingPerUser > 0 && c.user_jobs + n > l.maxWaitingPerUser) {
    throw new SubmissionError(
      `${req.user} has ${c.user_jobs} waiting jobs; with ${n} more that would be over the ` +
        `limit of ${l.maxWaitingPerUser} (OARSUB_MAX_WAITING_JOBS_PER_USER)`,
      -2,
    );
  }
  if (l.maxWaitingPerQueue > 0 && c.queue_jobs + n > l.maxWaitingPerQueue) {
    throw new SubmissionError(
      `queue ${queue} has ${c.queue_jobs} waiting jobs; with ${n} more that would be over the ` +
        `limit of ${l.maxWaitingPerQueue} (OARSUB_MAX_WAITING_JOBS_PER_QUEUE)`,
      -2,
    );
  }
}

/** OAR's times are 32-bit seconds: a job must end by 2038-01-19 03:14:07 UTC. */
export const LAST_EPOCH = 2147483647;

/** A job whose walltime would carry it past LAST_EPOCH would wait for ever: refused. */
function checkEndTime(req: JobRequest, start: number): void {
  for (const m of req.moldables) {
    const walltime = m.walltime ?? req.defaultWalltime;
    if (start + walltime > LAST_EPOCH) {
      throw new SubmissionError(
        `walltime too long: the job would end after 2038-01-19 03:14:07 UTC (OAR's times are ` +
          `32-bit seconds)`,
        -5,
      );
    }
  }
}

/** `-a` names jobs that exist (a job waiting for a job that never was would run at once). */
async function checkDependencies(sql: Queryable, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const rows = await sql<{ job_id: number }[]>`
    SELECT job_id FROM jobs WHERE job_id = ANY(${ids}::int[])`;
  const known = new Set(rows.map((r) => Number(r.job_id)));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length) {
    throw new SubmissionError(`bad dependency: no job ${missing.join(", ")}`, 2);
  }
}

export async function submitJobs(
  sql: Sql,
  req: JobRequest,
  keys: KeyPair,
): Promise<Submitted> {
  const { queue, types } = defaultRules(req);
  if (req.commands.length > 1 && req.moldables.length > 1) {
    throw new SubmissionError("array jobs cannot be moldable", -30);
  }
  await checkQueue(sql, queue);
  await checkInner(sql, types);
  await checkDependencies(sql, req.dependencies.map((d) => d.jobId));
  await checkLimits(sql, req, queue, req.commands.length);
  const now = await dbNow(sql);
  if (req.reservationDate !== null && req.reservationDate <= now) {
    throw new SubmissionError("the advance reservation date is in the past", 7);
  }
  checkEndTime(req, req.reservationDate ?? now);
  // Group properties as stored: the user's, plus type='default' when no type is named.
  const groupProps = req.moldables.map((m) =>
    m.groups.map((g) => groupPropertyWithType(g.property, req.properties))
  );
  const estimates: Submitted["estimates"] = [];
  for (let i = 0; i < req.moldables.length; i++) {
    const walltime = req.moldables[i].walltime ?? req.defaultWalltime;
    const resources = await estimateMoldable(sql, req.properties, groupProps[i], req.moldables[i]);
    estimates.push({ resources, walltime });
  }
  if (!estimates.some((e) => e.resources !== null)) {
    throw new SubmissionError("There are not enough resources for your request", -5);
  }
  const first = estimates.find((e) => e.resources !== null)!;
  const message = jobMessage({ ...req, types }, queue, first.resources!, first.walltime);
  const n = req.commands.length;
  const stdout = outputName(req.stdout, req.name, "stdout");
  const stderr = outputName(req.stderr, req.name, "stderr");
  const state = req.hold ? "Hold" : "Waiting";
  const properties = req.properties ? toSql(req.properties) : null;

  const jobIds = await sql.begin(async (tx) => {
    const ids = await nextIds(tx, "jobs", "job_id", n);
    const arrayId = ids[0];
    const indexes = ids.map((_, i) => i + 1);
    await tx`
      INSERT INTO jobs (job_id, array_id, array_index, initial_request, job_name, job_type,
        info_type, state, reservation, message, job_user, project, command, queue_name,
        properties, launching_directory, submission_time, start_time, checkpoint,
        checkpoint_signal, notify, stdout_file, stderr_file)
      SELECT x.id, ${arrayId}, x.idx, ${req.initialRequest}, ${req.name}, ${req.jobType},
        ${req.infoType}, ${state}::job_state,
        ${req.reservationDate !== null ? "toSchedule" : "None"}, ${message}, ${req.user},
        ${req.project}, x.cmd, ${queue}, ${properties}, ${req.launchingDirectory}, ${now},
        ${req.reservationDate ?? 0}, ${req.checkpoint}, ${req.signal}, ${req.notify},
        ${stdout}, ${stderr}
      FROM unnest(${ids}::int[], ${indexes}::int[], ${req.commands}::text[]) AS x(id, idx, cmd)`;
    await tx`
      INSERT INTO challenges (job_id, challenge, ssh_private_key, ssh_public_key)
      SELECT x.id, x.ch, ${keys.privateKey}, ${keys.publicKey}
      FROM unnest(${ids}::int[], ${ids.map(() => newChallenge())}::text[]) AS x(id, ch)`;
    // Moldables, groups and descriptions for every job.
    const moldJob: number[] = [];
    const moldWall: number[] = [];
    const moldIdx: number[] = [];
    for (const id of ids) {
      req.moldables.forEach((m, i) => {
        moldJob.push(id);
        moldWall.push(m.walltime ?? req.defaultWalltime);
        moldIdx.push(i);
      });
    }
    const moldIds = await nextIds(tx, "moldable_job_descriptions", "moldable_id", moldJob.length);
    await tx`
      INSERT INTO moldable_job_descriptions (moldable_id, moldable_job_id, moldable_walltime)
      SELECT * FROM unnest(${moldIds}::int[], ${moldJob}::int[], ${moldWall}::int[])`;
    const grpMold: number[] = [];
    const grpProp: (string | null)[] = [];
    const grpRes: { resource: string; value: number }[][] = [];
    moldIds.forEach((moldId, k) => {
      const i = moldIdx[k];
      req.moldables[i].groups.forEach((g, j) => {
        grpMold.push(moldId);
        const p = groupProps[i][j];
        grpProp.push(p ? toSql(p) : "");
        grpRes.push(g.resources);
      });
    });
    const grpIds = await nextIds(tx, "job_resource_groups", "res_group_id", grpMold.length);
    await tx`
      INSERT INTO job_resource_groups (res_group_id, res_group_moldable_id, res_group_property)
      SELECT * FROM unnest(${grpIds}::int[], ${grpMold}::int[], ${grpProp}::text[])`;
    const dGrp: number[] = [];
    const dType: string[] = [];
    const dVal: number[] = [];
    const dOrd: number[] = [];
    grpIds.forEach((gid, k) => {
      grpRes[k].forEach((r, order) => {
        dGrp.push(gid);
        dType.push(r.resource);
        dVal.push(r.value);
        dOrd.push(order);
      });
    });
    await tx`
      INSERT INTO job_resource_descriptions (res_job_group_id, res_job_resource_type,
        res_job_value, res_job_order)
      SELECT * FROM unnest(${dGrp}::int[], ${dType}::text[], ${dVal}::int[], ${dOrd}::int[])`;
    if (types.length) {
      await tx`
        INSERT INTO job_types (job_id, type)
        SELECT j, t FROM unnest(${ids}::int[]) AS j, unnest(${types}::text[]) AS t`;
    }
    if (req.dependencies.length) {
      await tx`
        INSERT INTO job_dependencies (job_id, job_id_required, min_start_shift, max_start_shift)
        SELECT j, d.req, d.mn, d.mx FROM unnest(${ids}::int[]) AS j,
          unnest(${req.dependencies.map((d) => d.jobId)}::int[],
            ${req.dependencies.map((d) => d.minStartShift)}::text[],
            ${req.dependencies.map((d) => d.maxStartShift)}::text[]) AS d(req, mn, mx)
        ON CONFLICT DO NOTHING`;
    }
    await tx`
      INSERT INTO job_state_logs (job_id, job_state, date_start, date_stop)
      SELECT j, ${state}, ${now}, 0 FROM unnest(${ids}::int[]) AS j`;
    return ids;
  });
  return { jobIds, arrayId: jobIds[0], estimates };
}

/** `n` fresh values of a table's serial column, ascending. */
async function nextIds(tx: Queryable, table: string, column: string, n: number): Promise<number[]> {
  if (n === 0) return [];
  const rows = await tx<{ id: number }[]>`
    SELECT nextval(pg_get_serial_sequence(${table}, ${column}))::int AS id
    FROM generate_series(1, ${n})`;
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** OAR's default output names, and %jobname% replaced by the job's name. */
export function outputName(given: string | null, name: string | null, which: string): string {
  if (!given) return `OAR${name ? `.${name}` : ""}.%jobid%.${which}`;
  return name ? given.replaceAll("%jobname%", name) : given;
}

/** Parses `-p` (null when absent or blank). */
export function parseJobProperties(text: string | undefined, columns: ColumnSet): Expr | null {
  if (text === undefined || text.trim() === "") return null;
  return parseExpression(text, columns);
}
