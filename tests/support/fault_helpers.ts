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

/** The server's embedded PostgreSQL, stopped (fast: every session is cut) and started again. */
export async function restartDatabase(varDir: string): Promise<void> {
  const where = { dir: `${varDir}/pg`, socketDir: `${varDir}/pgsocket` };
  const pg = await ensureEmbeddedPostgres(where);
  await pg.stop();
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
