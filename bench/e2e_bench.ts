/**
 * End-to-end throughput and latency of the whole server (issue 10): `deno task start` on the
 * embedded default in a temporary var directory, the local launcher, trivial jobs (`true`).
 *
 *   deno task bench:e2e [--jobs 1000] [--hosts 4] [--cores 4] [--samples 20]
 *                       [--submit inproc|oarsub|array] [--parallel 8] [--min-between 0,5]
 *                       [--set KEY=VALUE]...   (extra oar.conf keys, e.g. OAREXEC_LOCAL_AGENT=no)
 *                       [--launcher local|ssh]  (ssh: a cluster in a box, lib/cluster/, as root)
 *                       [--pg-stats]  (after the throughput phase: the statements that took the
 *                                      database's time, from pg_stat_statements)
 *                       [--artifacts]  (the server runs `deno task compile`'s artifacts, built
 *                                       for the phase's oar.conf, through OARDIR)
 *
 * For each SCHEDULER_MIN_TIME_BETWEEN_2_CALLS value it starts the server, then measures
 *  - throughput: N jobs submitted as fast as possible, jobs/s from the first submission to the
 *    moment every job is Terminated (polled every 100 ms: a count over every job, whose cost
 *    would otherwise be taken from the server measured);
 *  - latency: single jobs on the idle cluster, one after the other (the next one is submitted as
 *    soon as the previous one ended), submit→Running p50/p99.
 *
 * Submission: `inproc` (default) inserts through lib/submission/submit.ts in this process, one
 * submission per job over a pool of `--parallel` connections, then notifies almighty `Qsub` as
 * oarsub does, so the numbers measure the server and not oarsub's own start-up (the job key pair
 * is generated once and shared: ssh-keygen is a client cost). `oarsub` runs real
 * `deno task oarsub` processes, `--parallel` at a time. `array` submits the throughput phase's
 * jobs as one array job, as a user with many jobs would (`oarsub --array N`).
 *
 * The embedded PostgreSQL is brought up here with the same code and paths as tools/start.ts (so
 * that the oar.conf can be written before start, with the keys start would write plus the
 * overrides), start reuses it, and it is stopped at the end. Everything goes: the server with
 * SIGINT, the database, the temporary directory.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { type EmbeddedPg, ensureEmbeddedPostgres } from "../tools/embedded/postgres.ts";
import { connectUrl, type Sql } from "../lib/db/client.ts";
import { FINAL_STATES, isFinalState } from "../lib/job/states.ts";
import {
  type DbLogin,
  embeddedConfig,
  prepareEmbeddedDatabase,
  renderConfig,
} from "../tools/embedded/setup.ts";
import { readConfigFile } from "../lib/runtime/config.ts";
import { ZmqNotifier } from "../lib/transport/zmq_notifier.ts";
import { resourceColumns } from "../lib/properties/columns.ts";
import { parseResourceRequest } from "../lib/submission/resource_request.ts";
import { type JobRequest, submitJobs } from "../lib/submission/submit.ts";
import { generateKeyPair, type KeyPair } from "../lib/submission/job_key.ts";
import { osUserName } from "../lib/cli/identity.ts";
import pLimit from "p-limit";
import { cpuByRole, formatBreakdown, snapshot } from "./cpu_breakdown.ts";
import { freePortBase } from "../tests/support/server.ts";
import { clusterDown, type ClusterInfo, clusterUp } from "../tools/cluster/netns.ts";
import {
  appendClusterBlock,
  clusterConfig,
  registerClusterResources,
} from "../tools/cluster/server.ts";

const root = new URL("../", import.meta.url).pathname;

interface Options {
  jobs: number;
  hosts: number;
  cores: number;
  samples: number;
  submit: "inproc" | "oarsub" | "array";
  parallel: number;
  minBetween: number[];
  /** Extra oar.conf keys (`--set KEY=VALUE`, repeatable). */
  extra: Record<string, string>;
  launcher: "local" | "ssh";
  /** Where to copy the server's output of each phase (`<file>.<min_between>`). */
  keepLog?: string;
  logLevel: number;
  pgStats: boolean;
  artifacts: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string", default: "1000" },
      hosts: { type: "string", default: "4" },
      cores: { type: "string", default: "4" },
      samples: { type: "string", default: "20" },
      submit: { type: "string", default: "inproc" },
      parallel: { type: "string", default: "8" },
      "min-between": { type: "string", default: "0,5" },
      set: { type: "string", multiple: true, default: [] },
      launcher: { type: "string", default: "local" },
      "keep-log": { type: "string" },
      "log-level": { type: "string", default: "2" },
      "pg-stats": { type: "boolean", default: false },
      artifacts: { type: "boolean", default: false },
    },
  });
  const submit = values.submit === "oarsub" || values.submit === "array" ? values.submit : "inproc";
  return {
    jobs: Number(values.jobs),
    hosts: Number(values.hosts),
    cores: Number(values.cores),
    samples: Number(values.samples),
    submit,
    parallel: Number(values.parallel),
    minBetween: values["min-between"].split(",").map(Number),
    launcher: values.launcher === "ssh" ? "ssh" : "local",
    extra: Object.fromEntries(
      values.set.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    ),
    keepLog: values["keep-log"],
    logLevel: Number(values["log-level"]),
    pgStats: values["pg-stats"],
    artifacts: values.artifacts,
  };
}

/** The statements that took the database's time during the throughput phase, per job. */
async function printStatements(sql: Sql, jobs: number): Promise<void> {
  const rows = await sql<{ calls: number; total: number; mean: number; query: string }[]>`
    SELECT calls::int, total_exec_time AS total, mean_exec_time AS mean, query
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`;
  const [{ all, n }] = await sql<{ all: number; n: number }[]>`
    SELECT COALESCE(SUM(total_exec_time), 0) AS all, COALESCE(SUM(calls), 0)::int AS n
    FROM pg_stat_statements`;
  console.log(
    `  database: ${(n / jobs).toFixed(1)} statements and ${(all / jobs).toFixed(2)} ms of ` +
      `execution a job; the costliest:`,
  );
  for (const r of rows) {
    const text = r.query.replace(/\s+/g, " ").slice(0, 110);
    console.log(
      `    ${r.total.toFixed(0).padStart(6)} ms ${String(r.calls).padStart(6)}× ` +
        `${r.mean.toFixed(2).padStart(6)} ms  ${text}`,
    );
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The running server: `deno run -A tools/start.ts` with its output kept in a log file. */
class Server {
  #child: Deno.ChildProcess;
  #log = "";
  #drained: Promise<unknown>;

  constructor(readonly varDir: string, readonly opts: Options, readonly base: number) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}tools/start.ts`,
        "--hosts",
        String(opts.hosts),
        "--cores",
        String(opts.cores),
        "--port-base",
        String(base),
      ],
      cwd: root,
      env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) {
        this.#log += decoder.decode(c, { stream: true });
        // Keep the tail only: a long run logs a few lines per job.
        if (this.#log.length > 4_000_000) this.#log = this.#log.slice(-2_000_000);
      }
    };
    this.#drained = Promise.all([drain(this.#child.stdout), drain(this.#child.stderr)]);
  }

  get log(): string {
    return this.#log;
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#log.includes(`listening on port ${this.base}`)) {
      if (Date.now() > deadline) throw new Error(`the server did not start:\n${this.#log}`);
      await sleep(50);
    }
  }

  /** Ctrl-C; returns start's exit code. */
  async stop(): Promise<number> {
    try {
      this.#child.kill("SIGINT");
    } catch { /* gone */ }
    const status = await this.#child.status;
    await this.#drained;
    return status.code;
  }
}

interface Submitter {
  /** Submits one job; its id. */
  submit(): Promise<number>;
  /** `--submit array`: the throughput phase's jobs as one array job (`oarsub --array N`). */
  submitArray?(n: number): Promise<number[]>;
  close(): Promise<void>;
}

async function inprocSubmitter(
  sql: Sql,
  confPath: string,
  work: string,
  array: boolean,
): Promise<Submitter> {
  const config = readConfigFile(confPath);
  const notifier = new ZmqNotifier(config);
  const columns = await resourceColumns(sql);
  const defaults = config.str("OARSUB_DEFAULT_RESOURCES") || "/resource_id=1";
  const moldable = parseResourceRequest("core=1,walltime=0:05:00", columns, { defaults });
  const keys: KeyPair = await generateKeyPair();
  const user = await osUserName();
  const req: JobRequest = {
    user,
    commands: ["true"],
    jobType: "PASSIVE",
    infoType: "localhost:",
    queue: null,
    project: "default",
    name: null,
    properties: null,
    moldables: [moldable],
    types: [],
    dependencies: [],
    launchingDirectory: work,
    stdout: null,
    stderr: null,
    notify: null,
    checkpoint: 0,
    signal: 12,
    hold: false,
    reservationDate: null,
    initialRequest: "oarsub -l core=1,walltime=0:05:00 true",
    defaultWalltime: config.int("OARSUB_DEFAULT_WALLTIME"),
  };
  return {
    async submit() {
      const r = await submitJobs(sql, req, keys);
      notifier.almighty("Qsub");
      return r.jobIds[0];
    },
    submitArray: array
      ? async (n) => {
        const r = await submitJobs(sql, { ...req, commands: Array(n).fill("true") }, keys);
        notifier.almighty("Qsub");
        return r.jobIds;
      }
      : undefined,
    close: () => notifier.close(),
  };
}

function oarsubSubmitter(varDir: string, work: string): Submitter {
  return {
    async submit() {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "--quiet", "oarsub", "-d", work, "-l", "core=1,walltime=0:05:00", "true"],
        cwd: root,
        env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const id = Number(/OAR_JOB_ID=(\d+)/.exec(text)?.[1]);
      if (!out.success || !Number.isInteger(id)) {
        throw new Error(`oarsub failed: ${new TextDecoder().decode(out.stderr)}`);
      }
      return id;
    },
    close: () => Promise.resolve(),
  };
}

async function states(sql: Sql, ids: number[]): Promise<{ done: number; error: number }> {
  const [r] = await sql<{ done: number; error: number }[]>`
    SELECT count(*) FILTER (WHERE state IN ${sql(FINAL_STATES)})::int AS done,
           count(*) FILTER (WHERE state = 'Error')::int AS error
    FROM jobs WHERE job_id = ANY(${ids}::int[])`;
  return r;
}

/**
 * CPU time the whole machine has spent (every process, kernel included; idle and iowait left
 * out), in ms, from /proc/stat; null where there is none. Throughput varies from run to run
 * with how the launch and end waves line up; the CPU a job costs does not, and on our 2-core
 * machines it is what caps the throughput.
 */
function machineCpuMs(): number | null {
  try {
    const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/);
    // user nice system idle iowait irq softirq steal
    const [user, nice, system, , , irq, softirq] = cpu.slice(1).map(Number);
    return ((user + nice + system + irq + softirq) * 1000) / 100; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}

async function throughput(
  sql: Sql,
  submitter: Submitter,
  opts: Options,
  timeoutMs: number,
): Promise<
  {
    submitS: number;
    totalS: number;
    errors: number;
    cpuMs: number | null;
    byRole: Map<string, number>;
  }
> {
  const limit = pLimit(opts.parallel);
  const procs0 = snapshot();
  const cpu0 = machineCpuMs();
  const t0 = performance.now();
  const ids = submitter.submitArray ? await submitter.submitArray(opts.jobs) : await Promise.all(
    Array.from({ length: opts.jobs }, () => limit(() => submitter.submit())),
  );
  const submitS = (performance.now() - t0) / 1000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await states(sql, ids);
    if (s.done === ids.length) {
      const cpu1 = machineCpuMs();
      const totalS = (performance.now() - t0) / 1000;
      const cpuMs = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
      const byRole = cpuByRole(procs0, snapshot(), Deno.pid, cpuMs ?? undefined);
      return { submitS, totalS, errors: s.error, cpuMs, byRole };
    }
    if (Date.now() > deadline) {
      throw new Error(`only ${s.done}/${ids.length} jobs ended within ${timeoutMs / 1000} s`);
    }
    await sleep(100);
  }
}

async function latency(sql: Sql, submitter: Submitter, samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const id = await submitter.submit();
    const deadline = Date.now() + 120_000;
    let running: number | null = null;
    for (;;) {
      const [j] = await sql<{ state: string; ran: boolean }[]>`
        SELECT state, EXISTS (SELECT 1 FROM job_state_logs l
                              WHERE l.job_id = j.job_id AND l.job_state = 'Running') AS ran
        FROM jobs j WHERE job_id = ${id}`;
      if (running === null && j.ran) running = performance.now() - t0;
      if (isFinalState(j.state)) break;
      if (Date.now() > deadline) throw new Error(`job ${id} did not end within 120 s`);
      await sleep(5);
    }
    out.push(running ?? NaN);
  }
  return out.sort((a, b) => a - b);
}

/** `deno task compile` into `dir`, permissions baked for the configuration at `confPath`. */
async function buildArtifacts(confPath: string, dir: string): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}tools/compile.ts`, dir],
    cwd: root,
    env: { OARCONFFILE: confPath },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`compile failed: ${new TextDecoder().decode(r.stderr)}`);
}

async function leftovers(varDir: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-af", varDir], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n")
    .filter((l) => l && !l.includes("postgres"));
}

async function runPhase(
  pg: EmbeddedPg,
  login: DbLogin,
  varDir: string,
  opts: Options,
  minBetween: number,
  cluster: ClusterInfo | null,
): Promise<void> {
  const base = await freePortBase();
  const confPath = join(varDir, "oar.conf");
  await Deno.writeTextFile(
    confPath,
    renderConfig(
      {
        ...embeddedConfig(pg, "oar", login, varDir, base),
        SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: minBetween,
        // The bench submits as root.
        JOB_SYSTEM_USERS_ALLOWED: "root",
        ...(opts.artifacts ? { OARDIR: join(varDir, "dist") } : {}),
        ...opts.extra,
        LOG_LEVEL: opts.logLevel,
      },
      "oar-deno embedded default, written by bench/e2e_bench.ts",
    ),
  );
  if (cluster) {
    await appendClusterBlock(confPath, cluster.prefix, await clusterConfig(cluster, confPath));
  }
  if (opts.artifacts) await buildArtifacts(confPath, join(varDir, "dist"));
  const work = join(varDir, "work");
  await Deno.mkdir(work, { recursive: true });
  const server = new Server(varDir, opts, base);
  const sql = connectUrl(pg.url("oar"), { max: opts.parallel });
  let submitter: Submitter | null = null;
  try {
    await server.ready();
    submitter = opts.submit === "oarsub"
      ? oarsubSubmitter(varDir, work)
      : await inprocSubmitter(sql, confPath, work, opts.submit === "array");
    // Warm-up: one job through every stage (first-run compilation caches, connections).
    await latency(sql, submitter, 1);
    if (opts.pgStats) {
      await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
      await sql`SELECT pg_stat_statements_reset()`;
    }
    const t = await throughput(sql, submitter, opts, Math.max(120_000, opts.jobs * 1000));
    if (opts.pgStats) await printStatements(sql, opts.jobs);
    const lat = await latency(sql, submitter, opts.samples);
    console.log(
      `SCHEDULER_MIN_TIME_BETWEEN_2_CALLS=${minBetween}, ${opts.hosts}×${opts.cores} cores, ` +
        `${opts.launcher} launcher, ${opts.artifacts ? "artifacts, " : ""}` +
        Object.entries(opts.extra).map(([k, v]) => `${k}=${v}, `).join("") +
        `submit=${opts.submit}${
          opts.submit === "oarsub" || opts.parallel > 1 ? ` ×${opts.parallel}` : ""
        }`,
    );
    console.log(
      `  throughput: ${opts.jobs} jobs in ${t.totalS.toFixed(2)} s = ` +
        `${(opts.jobs / t.totalS).toFixed(1)} jobs/s (submission ${t.submitS.toFixed(2)} s = ` +
        `${(opts.jobs / t.submitS).toFixed(0)}/s; ${t.errors} in Error)`,
    );
    if (t.cpuMs !== null) {
      console.log(
        `  machine CPU (all processes) during it: ${(t.cpuMs / opts.jobs).toFixed(2)} ms/job, ` +
          `${(t.cpuMs / 10 / t.totalS).toFixed(0)}% of one core on average; by process:`,
      );
      for (const line of formatBreakdown(t.byRole, opts.jobs)) console.log(line);
    }
    console.log(
      `  idle submit→Running over ${lat.length} jobs: p50 ${percentile(lat, 50).toFixed(0)} ms, ` +
        `p99 ${percentile(lat, 99).toFixed(0)} ms (min ${lat[0].toFixed(0)}, max ` +
        `${lat[lat.length - 1].toFixed(0)})`,
    );
  } catch (e) {
    console.error(`--- server log tail ---\n${server.log.slice(-6000)}`);
    throw e;
  } finally {
    await submitter?.close();
    await sql.end({ timeout: 5 });
    const code = await server.stop();
    if (code !== 0) console.error(`start exited with ${code}\n${server.log.slice(-3000)}`);
    if (opts.keepLog) await Deno.writeTextFile(`${opts.keepLog}.${minBetween}`, server.log);
    // almighty's children stop with it; wait until none is left before the next phase.
    const deadline = Date.now() + 20_000;
    while ((await leftovers(varDir)).length > 0 && Date.now() < deadline) await sleep(100);
    const left = await leftovers(varDir);
    if (left.length) console.error(`processes left behind:\n${left.join("\n")}`);
  }
}

async function main(): Promise<number> {
  const opts = options();
  const varDir = await Deno.makeTempDir({ prefix: "oar-bench-e2e-" });
  // The PostgreSQL account must reach the data directory (as root it runs as `postgres`).
  await Deno.chmod(varDir, 0o755);
  let pg: EmbeddedPg | null = null;
  let cluster: ClusterInfo | null = null;
  const emergency = () => pg?.stopSync();
  globalThis.addEventListener("unload", emergency);
  try {
    pg = await ensureEmbeddedPostgres({
      dir: join(varDir, "pg"),
      socketDir: join(varDir, "pgsocket"),
      settings: opts.pgStats ? { shared_preload_libraries: "pg_stat_statements" } : {},
    });
    const login = await prepareEmbeddedDatabase(pg, "oar", {
      hosts: opts.hosts,
      coresPerHost: opts.cores,
    });
    if (opts.launcher === "ssh") {
      cluster = await clusterUp({ hosts: opts.hosts, cores: opts.cores });
      const sql = connectUrl(pg.url("oar"), { max: 1 });
      await registerClusterResources(sql, cluster, { replace: true }).finally(() => sql.end());
    }
    for (const m of opts.minBetween) await runPhase(pg, login, varDir, opts, m, cluster);
    return 0;
  } finally {
    if (cluster) await clusterDown(cluster).catch((e) => console.error(`cluster down: ${e}`));
    await pg?.stop().catch(() => {});
    globalThis.removeEventListener("unload", emergency);
    await Deno.remove(varDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
