/**
 * Shared pieces of the fault and fuzz tests (issue 11): a seeded random generator (a failing run
 * can be replayed from its printed seed), the pids of the server's daemons found by their
 * command line, and the database of a running TestServer.
 */
import { readConfigFile } from "../../lib/runtime/config.ts";
import { connect, type Sql } from "../../lib/db/client.ts";
import { ensureEmbeddedPostgres } from "../../tools/embedded/postgres.ts";
import type { TestServer } from "./server.ts";
import { ERROR_EVENTS } from "../../modules/node_change_state/node_change_state.ts";
import { waitFor } from "./proc.ts";

/** mulberry32: small, fast, deterministic for a seed; not for anything but tests. */
export class Rng {
  #s: number;
  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }
  /** In [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

/** The seed from OAR_TEST_SEED (to replay a run) or a fresh one. */
export function testSeed(): number {
  const env = Deno.env.get("OAR_TEST_SEED");
  return env ? Number(env) >>> 0 : Math.floor(Math.random() * 2 ** 32);
}

/** Pids of processes running `modules/<module>.ts` for the server on `varDir`. */
export async function modulePids(varDir: string, module: string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-af", varDir], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.includes(`/modules/${module}/main.ts`))
    .map((l) => Number(l.split(" ")[0]))
    .filter((p) => Number.isInteger(p) && p > 0);
}

/** The single pid of a daemon, or undefined if none or several run. */
export async function daemonPid(varDir: string, module: string): Promise<number | undefined> {
  const pids = await modulePids(varDir, module);
  return pids.length === 1 ? pids[0] : undefined;
}

/** A pool on the server's database (the embedded PostgreSQL, as its oar.conf says). */
export function serverDb(confPath: string): Sql {
  return connect(readConfigFile(confPath), { max: 2 });
}

export interface JobAudit {
  job_id: number;
  state: string;
  /** job_state_logs rows in Launching. */
  launchings: number;
  /** Closed state log rows in a final state, plus the open one if final. */
  finals: number;
  resubmitted: number;
}

/** Per job: its state, how often it was launched and how many final state rows it has. */
export async function auditJobs(sql: Sql, ids: number[]): Promise<JobAudit[]> {
  return await sql<JobAudit[]>`
    SELECT j.job_id, j.state::text AS state,
      (SELECT count(*) FROM job_state_logs l
        WHERE l.job_id = j.job_id AND l.job_state = 'Launching')::int AS launchings,
      (SELECT count(*) FROM job_state_logs l
        WHERE l.job_id = j.job_id AND l.job_state IN ('Terminated', 'Error'))::int AS finals,
      (SELECT count(*) FROM jobs r WHERE r.resubmit_job_id = j.job_id)::int AS resubmitted
    FROM jobs j WHERE j.job_id = ANY(${ids}::int[]) ORDER BY j.job_id`;
}

/** What a failure report needs: the unfinished jobs, their events and the live oarexecs. */
export async function diagnose(sql: Sql, ids: number[]): Promise<string> {
  const open = (await auditJobs(sql, ids)).filter((r) =>
    r.state !== "Terminated" && r.state !== "Error"
  );
  const openIds = open.map((r) => r.job_id);
  const events = await sql`
    SELECT job_id, type, to_check, description FROM event_logs
    WHERE job_id = ANY(${openIds}::int[]) ORDER BY event_id`;
  const logs = await sql`
    SELECT job_id, job_state, date_start, date_stop FROM job_state_logs
    WHERE job_id = ANY(${openIds}::int[]) ORDER BY job_state_log_id`;
  const ps = await new Deno.Command("pgrep", { args: ["-af", "modules/oarexec"], stdout: "piped" })
    .output();
  return [
    `unfinished: ${JSON.stringify(open)}`,
    `state logs: ${JSON.stringify(logs)}`,
    `events: ${JSON.stringify(events)}`,
    `oarexec processes: ${new TextDecoder().decode(ps.stdout).trim() || "none"}`,
  ].join("\n");
}

/**
 * The server's embedded PostgreSQL, stopped (fast: every session is cut) and started again,
 * after `downMs` (an outage: what fails meanwhile must be retaken once it is back).
 */
export async function restartDatabase(varDir: string, downMs = 0): Promise<void> {
  const where = { dir: `${varDir}/pg`, socketDir: `${varDir}/pgsocket` };
  const pg = await ensureEmbeddedPostgres(where);
  await pg.stop();
  if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
  await ensureEmbeddedPostgres(where);
}

/**
 * Pids of the oarexecs running the server's jobs, from their pid files in OAREXEC_DIRECTORY
 * (job id → pid); a local agent running several jobs appears under each of them.
 */
export async function oarexecPids(oarexecDir: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  try {
    for await (const e of Deno.readDir(oarexecDir)) {
      const m = /^pid_of_oarexec_for_jobId_(\d+)$/.exec(e.name);
      if (!m) continue;
      const pid = Number(
        (await Deno.readTextFile(`${oarexecDir}/${e.name}`).catch(() => "")).trim(),
      );
      if (Number.isInteger(pid) && pid > 0) out.set(Number(m[1]), pid);
    }
  } catch { /* no directory yet */ }
  return out;
}

/** Every job of the server's database. */
export async function allJobIds(sql: Sql): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`SELECT job_id FROM jobs ORDER BY job_id`;
  return rows.map((r) => r.job_id);
}

/** What a job's end must be explained by (docs/modules.md §9.1): the events of each final state. */
const TERMINATE_CAUSES = ["SWITCH_INTO_TERMINATE_STATE", "EPILOGUE_ERROR", "CPUSET_CLEAN_ERROR"];
const ERROR_CAUSES = [
  ...ERROR_EVENTS,
  "SWITCH_INTO_ERROR_STATE",
  "FORCE_TERMINATE_FINISHING_JOB",
  "SERVER_PROLOGUE_TIMEOUT",
  "SERVER_PROLOGUE_EXIT_CODE_ERROR",
  "SERVER_EPILOGUE_TIMEOUT",
  "SERVER_EPILOGUE_EXIT_CODE_ERROR",
];

/** Jobs whose final state no event of theirs explains, with their event types. */
export async function unexplainedEnds(sql: Sql, ids: number[]): Promise<string[]> {
  const rows = await sql<{ job_id: number; state: string; types: string[] }[]>`
    SELECT j.job_id, j.state::text AS state,
      COALESCE(array_agg(e.type::text) FILTER (WHERE e.type IS NOT NULL), '{}') AS types
    FROM jobs j LEFT JOIN event_logs e ON e.job_id = j.job_id
    WHERE j.job_id = ANY(${ids}::int[]) GROUP BY j.job_id, j.state ORDER BY j.job_id`;
  const bad: string[] = [];
  for (const r of rows) {
    const causes = r.state === "Terminated" ? TERMINATE_CAUSES : ERROR_CAUSES;
    if (!r.types.some((t) => causes.includes(t))) {
      bad.push(`${r.job_id} ${r.state} [${r.types.join(" ")}]`);
    }
  }
  return bad;
}

/** Jobs with at least one event of `type`. */
export async function jobsWithEvent(sql: Sql, ids: number[], type: string): Promise<number[]> {
  const rows = await sql<{ job_id: number }[]>`
    SELECT DISTINCT job_id FROM event_logs WHERE job_id = ANY(${ids}::int[]) AND type = ${type}
    ORDER BY job_id`;
  return rows.map((r) => r.job_id);
}

/**
 * After almighty (pid `killed`) was killed: `deno task start` restarts it (tools/start.ts), the
 * database staying up, and the new one starts its companions again. Resolves once the new
 * almighty, proxy and commander run, none of the old ones is left, and the proxy listens.
 */
export async function almightyBack(server: TestServer, killed: number): Promise<void> {
  const mark = server.log.length;
  await waitFor("almighty restarted with its companions", async () => {
    const pids = await Promise.all(
      ["almighty", "appendice_proxy", "bipbip_commander"].map((m) => modulePids(server.varDir, m)),
    );
    return pids.every((p) => p.length === 1) && pids[0][0] !== killed &&
      server.log.slice(mark).includes(`listening on port ${server.portBase}`);
  }, 30_000);
}

/** A job in flight (toLaunch, Launching, Running, Finishing) and its state then. */
export interface InFlight {
  job_id: number;
  state: string;
}

/** The jobs in flight now. */
export async function jobsInFlight(sql: Sql): Promise<InFlight[]> {
  return await sql<InFlight[]>`
    SELECT job_id, state::text AS state FROM jobs
    WHERE state IN ('toLaunch', 'Launching', 'Running', 'Finishing') ORDER BY job_id`;
}

/**
 * A fault as the recovery measure sees it (issue 22): the jobs in flight just before it and
 * when it was repaired (the restarted process runs again, the database is back; a process that
 * nothing restarts, a bipbip or an oarexec, is "repaired" when it is killed).
 */
export interface FaultMark {
  fault: string;
  inFlight: InFlight[];
  /** The jobs it hit directly (a killed oarexec's): theirs whatever comes later. */
  hit?: number[];
  /** Date.now() at the repair. */
  repairedAt: number;
}

export interface Recovery {
  fault: string;
  /** Seconds from the repair (or the job's natural end, when later) to the last final state. */
  seconds: number;
  /** The job that took longest, if any counted. */
  job?: number;
  /** The jobs counted: caught in flight, and not by a later fault. */
  jobs: number;
  /** The jobs in flight at the fault. */
  caught: number;
}

/** How long a job's command runs by itself: `sleep N` sleeps N s, anything else ~0. */
function naturalDuration(command: string): number {
  const m = /^\s*sleep\s+(\d+(?:\.\d+)?)\s*$/.exec(command);
  return m ? Number(m[1]) : 0;
}

/**
 * Per fault: the time from its repair to the final state of the last job it caught in flight.
 * A job caught by several faults counts for the last one repaired before its end (a job that
 * ends late because of a later fault is that fault's). A job counts from its natural end
 * instead when that is later (a running `sleep 8` cannot end before its 8 s are over): its
 * Running start plus its command's duration, or, for a job not Running yet at the fault, the
 * repair plus that duration (it could have been launched at once). Database times are whole
 * seconds: a figure may be up to 1 s off. `offsetS` is the database clock minus this one, in
 * seconds.
 */
export async function recoveries(
  sql: Sql,
  marks: readonly FaultMark[],
  offsetS: number,
): Promise<Recovery[]> {
  const ids = [...new Set(marks.flatMap((m) => m.inFlight.map((j) => j.job_id)))];
  const rows = await sql<
    { job_id: number; command: string; running: number | null; final: number | null }[]
  >`
    SELECT j.job_id, j.command,
      (SELECT min(date_start) FROM job_state_logs l
        WHERE l.job_id = j.job_id AND l.job_state = 'Running')::float8 AS running,
      (SELECT min(date_start) FROM job_state_logs l
        WHERE l.job_id = j.job_id AND l.job_state IN ('Terminated', 'Error'))::float8 AS final
    FROM jobs j WHERE j.job_id = ANY(${ids}::int[])`;
  const byId = new Map(rows.map((r) => [r.job_id, r]));
  const repairedS = (m: FaultMark) => m.repairedAt / 1000 + offsetS;
  // Each job's fault: the one that hit it directly, else the last one repaired before its end
  // (to the second) that caught it.
  const owner = new Map<number, FaultMark>();
  const hitBy = new Map(marks.flatMap((m) => (m.hit ?? []).map((id) => [id, m] as const)));
  for (const m of marks) {
    for (const { job_id } of m.inFlight) {
      const final = byId.get(job_id)?.final;
      if (final === null || final === undefined || Math.floor(repairedS(m)) > final) continue;
      const prev = owner.get(job_id);
      const hit = hitBy.get(job_id);
      if (hit !== undefined) owner.set(job_id, hit);
      else if (prev === undefined || prev.repairedAt < m.repairedAt) owner.set(job_id, m);
    }
  }
  return marks.map((m) => {
    const repaired = repairedS(m);
    let worst: Recovery = { fault: m.fault, seconds: 0, jobs: 0, caught: m.inFlight.length };
    for (const { job_id, state } of m.inFlight) {
      if (owner.get(job_id) !== m) continue;
      const r = byId.get(job_id)!;
      worst.jobs++;
      const duration = naturalDuration(r.command);
      const natural = state === "Running" && r.running !== null
        ? r.running + duration
        : repaired + duration;
      const late = Math.max(0, r.final! - Math.max(repaired, natural));
      if (worst.job === undefined || late > worst.seconds) {
        worst = { ...worst, seconds: late, job: job_id };
      }
    }
    return worst;
  });
}

/**
 * The pid files left in OAREXEC_DIRECTORY for jobs of `ids` (each job's oarexec removes its own
 * once its report is acknowledged; a dead one's is removed as stale): `<file> (pid N alive|dead)`.
 */
export async function pidFilesLeft(oarexecDir: string, ids: readonly number[]): Promise<string[]> {
  const wanted = new Set(ids);
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(oarexecDir)) {
      const m = /^pid_of_oarexec_for_jobId_(\d+)$/.exec(e.name);
      if (!m || !wanted.has(Number(m[1]))) continue;
      const pid = (await Deno.readTextFile(`${oarexecDir}/${e.name}`).catch(() => "")).trim();
      const alive = /^\d+$/.test(pid) &&
        await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
      out.push(`${e.name} (pid ${pid || "none"} ${alive ? "alive" : "dead"})`);
    }
  } catch { /* no directory: no file left */ }
  return out.sort();
}
