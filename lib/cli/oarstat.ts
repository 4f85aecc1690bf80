/**
 * oarstat: job information (OAR 3's oarstat): the default table, -f full, -s states,
 * -e events, -J JSON with OAR's keys, selections by -j, -u, --array and --sql.
 */
import { errOut, out as print } from "./scope.ts";
import type { Queryable } from "../db/client.ts";
import { dbNow } from "../db/client.ts";
import type { Job } from "../job/jobs.ts";
import { normaliseJob, UNFINISHED_STATES } from "../job/jobs.ts";
import { jobColumns } from "../properties/columns.ts";
import { type Param, parseExpression, toParameterised } from "../properties/expr.ts";
import { formatTimedelta } from "../submission/walltime.ts";
import { intOption, list, parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { CliError, printWarning, runCli } from "./frame.ts";
import { actingUser } from "./identity.ts";

export const OARSTAT_OPTIONS = {
  job: {
    type: "string",
    short: "j",
    multiple: true,
    arg: "JOBID",
    help: "show only this job (repeatable)",
  },
  full: { type: "boolean", short: "f", help: "show every field" },
  state: { type: "boolean", short: "s", help: "show only the state of the jobs (-j or --array)" },
  user: {
    type: "string",
    short: "u",
    arg: "[USER]",
    help: "show only the jobs of USER (default: you)",
  },
  array: { type: "string", arg: "ARRAYID", help: "show the jobs of an array" },
  events: {
    type: "boolean",
    short: "e",
    help: "show the events of the jobs (-j or --array)",
  },
  sql: {
    type: "string",
    short: "S",
    arg: "FILTER",
    help: "filter on the jobs table (SQL WHERE syntax)",
  },
  json: { type: "boolean", short: "J", help: "print the result in JSON" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARSTAT_HELP = helpText(
  "oarstat",
  "[OPTIONS]",
  "Show information about jobs.",
  OARSTAT_OPTIONS,
);

const THIS_USER = "\u0000this-user";

export const STATE2CHAR: Readonly<Record<string, string>> = {
  Waiting: "W",
  toLaunch: "L",
  Launching: "L",
  Hold: "H",
  Running: "R",
  Terminated: "T",
  Error: "E",
  toError: "E",
  Finishing: "F",
  Suspended: "S",
  Resuming: "S",
  toAckReservation: "W",
};

/** `-u` takes an optional value, which parseArgs cannot express: mark the bare form. */
function markBareUser(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    out.push(args[i]);
    if (
      (args[i] === "-u" || args[i] === "--user") &&
      (i + 1 === args.length || args[i + 1].startsWith("-"))
    ) {
      out.push(THIS_USER);
    }
  }
  return out;
}

/** OAR's duration of a job as oarstat shows it. */
export function jobDuration(
  job: Pick<Job, "start_time" | "stop_time" | "state">,
  now: number,
): number {
  if (!job.start_time || now <= job.start_time) return 0;
  if (["Running", "Launching", "Finishing"].includes(job.state)) return now - job.start_time;
  if (job.stop_time !== 0) return job.stop_time - job.start_time;
  return -1;
}

/** A job as OAR's Job.to_dict() names its fields (+ cpuset_name). */
export function jobToDict(j: Job): Record<string, unknown> {
  return {
    id: j.job_id,
    array_id: j.array_id,
    array_index: j.array_index,
    initial_request: j.initial_request,
    name: j.job_name,
    env: j.job_env,
    type: j.job_type,
    info_type: j.info_type,
    state: j.state,
    reservation: j.reservation,
    message: j.message,
    scheduler_info: j.scheduler_info,
    user: j.job_user,
    project: j.project,
    group: j.job_group,
    command: j.command,
    exit_code: j.exit_code,
    queue_name: j.queue_name,
    properties: j.properties,
    launching_directory: j.launching_directory,
    submission_time: j.submission_time,
    start_time: j.start_time,
    stop_time: j.stop_time,
    file_id: j.file_id,
    accounted: j.accounted,
    notify: j.notify,
    assigned_moldable_job: j.assigned_moldable_job,
    checkpoint: j.checkpoint,
    checkpoint_signal: j.checkpoint_signal,
    stdout_file: j.stdout_file,
    stderr_file: j.stderr_file,
    resubmit_job_id: j.resubmit_job_id,
    suspended: j.suspended,
    last_karma: j.last_karma,
    cpuset_name: `${j.job_user}_${j.job_id}`,
  };
}

/** `YYYY-MM-DD hh:mm:ss` in local time (OAR's local_to_sql). */
export function localToSql(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

interface Selection {
  ids: number[] | null;
  arrayId: number | null;
  user: string | null;
  where: string | null;
}

async function selectJobs(sql: Queryable, s: Selection): Promise<Job[]> {
  const params: Param[] = [];
  const conds: string[] = [];
  if (s.ids) {
    params.push(s.ids as unknown as Param);
    conds.push(`job_id = ANY($${params.length}::int[])`);
  }
  if (s.arrayId !== null) {
    params.push(s.arrayId);
    conds.push(`array_id = $${params.length}::int`);
  }
  if (s.user !== null) {
    params.push(s.user);
    conds.push(`job_user = $${params.length}::text`);
  }
  if (s.where !== null) {
    const expr = parseExpression(s.where, await jobColumns(sql));
    conds.push(`(${toParameterised(expr, params)})`);
  }
  if (!s.ids && s.arrayId === null && s.where === null) {
    // Without -j/--array/--sql: the jobs not finished yet (OAR's default selection).
    params.push(UNFINISHED_STATES as unknown as Param);
    conds.push(`state::text = ANY($${params.length}::text[])`);
  }
  const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  const rows = await sql.unsafe(`SELECT * FROM jobs ${where} ORDER BY job_id`, params);
  return (rows as unknown as Job[]).map(normaliseJob);
}

async function hostsOf(sql: Queryable, jobs: Job[]): Promise<Map<number, string[]>> {
  const molds = jobs.map((j) => j.assigned_moldable_job ?? 0).filter((m) => m !== 0);
  const out = new Map<number, string[]>();
  if (molds.length === 0) return out;
  const rows = await sql<{ job_id: number; hosts: string[] }[]>`
    SELECT j.job_id, array_agg(DISTINCT r.network_address::text ORDER BY r.network_address::text)
      AS hosts
    FROM jobs j JOIN assigned_resources a ON a.moldable_job_id = j.assigned_moldable_job
    JOIN resources r ON r.resource_id = a.resource_id
    WHERE j.assigned_moldable_job = ANY(${molds}::int[]) AND r.network_address <> ''
    GROUP BY j.job_id`;
  for (const r of rows) out.set(Number(r.job_id), [...r.hosts]);
  return out;
}

function printTable(jobs: Job[], now: number): void {
  print("Job id    S User     Duration   System message");
  print("--------- - -------- ---------- ------------------------------------------------");
  for (const j of jobs) {
    print(
      `${String(j.job_id).padEnd(9)} ${STATE2CHAR[j.state] ?? "-"} ${j.job_user.padEnd(8)} ` +
        `${formatTimedelta(jobDuration(j, now)).padStart(10)} ${j.message}`,
    );
  }
}

function printFull(jobs: Job[], hosts: Map<number, string[]>): void {
  for (const j of jobs) {
    const d = jobToDict(j);
    print(`id: ${j.job_id}`);
    for (const [k, v] of Object.entries(d)) {
      if (k === "id" || v === null || v === "" || v === 0) continue;
      print(`    ${k} = ${v}`);
    }
    const h = hosts.get(j.job_id);
    if (h?.length) print(`    network_adresses = ${h.join(",")}`);
    print("");
  }
}

export async function oarstatMain(args: string[]): Promise<number> {
  let values;
  try {
    values = parse(markBareUser(args), OARSTAT_OPTIONS, false).values;
  } catch (e) {
    if (e instanceof CliError) {
      errOut(`#ERROR: ${e.message}\n${OARSTAT_HELP}`);
      return 2;
    }
    throw e;
  }
  if (values.help) {
    print(OARSTAT_HELP);
    return 0;
  }
  if (values.version) {
    print("OAR version : 3.0.0 (oar-deno)");
    return 0;
  }
  return await runCli("oarstat", OARSTAT_HELP, async (ctx) => {
    const ids = list(values.job).map((s) => intOption("-j", s, { min: 1 })!);
    const arrayId = intOption("--array", values.array, { min: 1 }) ?? null;
    if (ids.length && arrayId !== null) {
      throw new CliError(
        "Conflicting Job IDs and Array IDs (--array and -j cannot be used together)",
        1,
      );
    }
    let user: string | null = values.user ?? null;
    if (user === THIS_USER) user = await actingUser();
    const sql = ctx.sql;
    if (values.state || values.events) {
      const target = arrayId !== null
        ? (await sql<{ job_id: number }[]>`
            SELECT job_id FROM jobs WHERE array_id = ${arrayId} ORDER BY job_id`).map((r) =>
          Number(r.job_id)
        )
        : ids;
      if (target.length === 0) {
        printWarning("No job ids specified");
        return 0;
      }
      if (values.events) return await printEvents(sql, target, values.json ?? false);
      const rows = await sql<{ job_id: number; state: string }[]>`
        SELECT job_id, state FROM jobs WHERE job_id = ANY(${target}::int[]) ORDER BY job_id`;
      if (values.json) {
        print(
          JSON.stringify(Object.fromEntries(rows.map((r) => [String(r.job_id), r.state]))),
        );
      } else {
        for (const r of rows) print(`${r.job_id}: ${r.state}`);
      }
      return 0;
    }
    const jobs = await selectJobs(sql, {
      ids: ids.length ? ids : null,
      arrayId,
      user,
      where: values.sql ?? null,
    });
    if (values.json) {
      const out: Record<string, unknown> = {};
      const hosts = values.full ? await hostsOf(sql, jobs) : new Map();
      for (const j of jobs) {
        const d = jobToDict(j);
        if (hosts.has(j.job_id)) d.network_adresses = hosts.get(j.job_id)!.join(",");
        out[String(j.job_id)] = d;
      }
      print(JSON.stringify(out, null, 4));
    } else if (values.full) {
      printFull(jobs, await hostsOf(sql, jobs));
    } else if (jobs.length) {
      printTable(jobs, await dbNow(sql));
    }
    return 0;
  });
}

async function printEvents(sql: Queryable, ids: number[], json: boolean): Promise<number> {
  const events = await sql<{ job_id: number; date: number; type: string; description: string }[]>`
    SELECT job_id, date, type, description FROM event_logs
    WHERE job_id = ANY(${ids}::int[]) ORDER BY event_id`;
  if (json) {
    const out: Record<string, { date: string; type: string; description: string }[]> = {};
    for (const e of events) {
      (out[String(e.job_id)] ??= []).push({
        date: localToSql(e.date),
        type: e.type,
        description: e.description,
      });
    }
    print(JSON.stringify(out));
    return 0;
  }
  print("Date                Job id Type                           Description");
  for (const e of events) {
    print(
      `${localToSql(e.date)} ${String(e.job_id).padEnd(6)} ${e.type.padEnd(30)} ${e.description}`,
    );
  }
  return 0;
}
