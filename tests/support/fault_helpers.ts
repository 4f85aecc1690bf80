/**
 * Shared pieces of the fault and fuzz tests (issue 11): a seeded random generator (a failing run
 * can be replayed from its printed seed), the pids of the server's daemons found by their
 * command line, and the database of a running TestServer.
 */
import { readConfigFile } from "../../lib/config.ts";
import { connect, type Sql } from "../../lib/db/client.ts";

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
    .filter((l) => l.includes(`/modules/${module}.ts`))
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
