/**
 * Fixtures for job-execution tests: a temporary OAREXEC_DIRECTORY and launching directory, an
 * oar.conf for the local launcher, a TCP listener standing in for the appendice proxy (it
 * collects oarexec's report lines), job rows ready to launch, and the clean-up of any oarexec
 * a test leaves behind.
 */
import { join } from "node:path";
import { readConfigFile } from "../../lib/runtime/config.ts";
import type { Config } from "../../lib/runtime/config.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { setupLogging } from "../../lib/runtime/log.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { RecordingNotifier } from "../../lib/transport/notifier.ts";
import { denoRunArgs, type EntryName } from "../../lib/permissions/mod.ts";
import { LineSplitter, type OarexecDescriptor } from "../../lib/protocol/mod.ts";
import { insertJob, insertResources, type JobFixture } from "./fixtures.ts";
import { freePort } from "./ports.ts";
import { type TestDb, writeConfigFile } from "./testdb.ts";
import { waitFor } from "./proc.ts";
import { agentSocketPath } from "../../lib/exec/agent_path.ts";

/** Collects the lines sent to it, like the appendice proxy would receive them. */
export class ReportListener {
  readonly lines: string[] = [];
  #listener: Deno.TcpListener;
  #done: Promise<void>;

  constructor(readonly port: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#done = this.#accept();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      (async () => {
        const splitter = new LineSplitter();
        try {
          for await (const chunk of conn.readable) {
            const { lines } = splitter.push(chunk);
            this.lines.push(...lines);
            // As the appendice proxy does once bipbip handled it: oarexec waits for this.
            for (const l of lines) {
              if (l.startsWith("OAREXEC_")) await conn.write(new TextEncoder().encode("OK\n"));
            }
          }
        } catch { /* reset */ }
        this.lines.push(...splitter.end());
      })();
    }
  }

  /** The first line starting with `prefix`, waiting for it. */
  async line(prefix: string, timeoutMs = 20_000): Promise<string> {
    return await waitFor(
      `a line ${prefix}…`,
      () => this.lines.find((l) => l.startsWith(prefix)),
      timeoutMs,
    );
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#done;
  }
}

export interface ExecRig {
  db: TestDb;
  dir: string;
  /** OAREXEC_DIRECTORY */
  tmp: string;
  /** The jobs' launching directory. */
  work: string;
  port: number;
  confPath: string;
  config: Config;
  log: Logger;
  notifier: RecordingNotifier;
}

/** A temp tree, a report port, and an oar.conf for the local launcher. */
export async function execRig(
  db: TestDb,
  extra: Record<string, string | number> = {},
): Promise<ExecRig> {
  const dir = await Deno.makeTempDir({ prefix: "oar-exec-" });
  db.addTempDir(dir);
  await Deno.chmod(dir, 0o755);
  const tmp = join(dir, "oarexec");
  const work = join(dir, "work");
  await Deno.mkdir(work, { mode: 0o777 });
  await Deno.chmod(work, 0o777);
  const port = await freePort();
  const confPath = await writeConfigFile(db, {
    OAREXEC_LAUNCHER: "local",
    OAREXEC_DIRECTORY: tmp,
    SERVER_HOSTNAME: "127.0.0.1",
    SERVER_PORT: port,
    TIMEOUT_SSH: 15,
    PROLOGUE_EPILOGUE_TIMEOUT: 10,
    LOG_FILE: ":stderr:",
    LOG_LEVEL: 2,
    // The local launcher's agent leaves soon after the test's last job.
    OAREXEC_AGENT_IDLE_TIME: 1,
    ...extra,
  });
  const config = readConfigFile(confPath);
  // The local launcher's agent may still hold a job whose report nobody will take any more
  // (the test's listener is closed): it would retry for hours.
  db.addCleanup(() => killSessions(pidsWithMarker(`unix:${agentSocketPath(config)}`)));
  return {
    db,
    dir,
    tmp,
    work,
    port,
    confPath,
    config,
    log: setupLogging("exec-test", config),
    notifier: new RecordingNotifier(),
  };
}

/** A job on `hosts` (one resource each) in toLaunch, running `command` in the rig's work dir. */
export async function launchableJob(
  sql: Queryable,
  rig: ExecRig,
  f: JobFixture & { hosts?: string[]; launchingDirectory?: string } = {},
): Promise<number> {
  const resources = await insertResources(sql, f.hosts ?? ["node-a", "node-b"], 1);
  const { jobId } = await insertJob(sql, {
    user: "root",
    state: "toLaunch",
    resources,
    ...f,
  });
  await sql`
    UPDATE jobs SET launching_directory = ${f.launchingDirectory ?? rig.work}
    WHERE job_id = ${jobId}`;
  return jobId;
}

export async function challengeOf(sql: Queryable, jobId: number): Promise<string> {
  const [r] = await sql<{ challenge: string }[]>`
    SELECT challenge FROM challenges WHERE job_id = ${jobId}`;
  return r.challenge;
}

export async function jobState(sql: Queryable, jobId: number): Promise<string> {
  const [r] = await sql<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${jobId}`;
  return r.state;
}

export async function eventTypes(sql: Queryable, jobId: number): Promise<string[]> {
  const rows = await sql<{ type: string }[]>`
    SELECT type FROM event_logs WHERE job_id = ${jobId} ORDER BY event_id`;
  return rows.map((r) => r.type);
}

/** The pid in oarexec's pid file for the job, once written. */
export async function oarexecPid(rig: ExecRig, jobId: number, timeoutMs = 15_000) {
  return await waitFor("oarexec's pid file", async () => {
    try {
      const t = (await Deno.readTextFile(join(rig.tmp, `pid_of_oarexec_for_jobId_${jobId}`)))
        .trim();
      return t === "" ? undefined : Number(t);
    } catch {
      return undefined;
    }
  }, timeoutMs);
}

export function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Kills (SIGKILL) the session of every pid given that is still there. */
export function killSessions(pids: number[]): void {
  for (const pid of pids) {
    try {
      Deno.kill(-pid, "SIGKILL");
    } catch { /* gone */ }
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/**
 * Pids of processes whose command line mentions `marker` (tests give each job a unique
 * marker in its command, so they only ever find their own processes).
 */
export function pidsWithMarker(marker: string): number[] {
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (cmd.includes(marker)) found.push(Number(e.name));
    } catch { /* gone */ }
  }
  return found;
}

/** The deno argv of an entry with exactly its flags. */
export function entryArgs(name: EntryName, config: Config, args: string[]): string[] {
  return denoRunArgs(name, config, args);
}

/** A user created for the test (removed by `remove()`), for run-as-user checks. */
export async function createUser(): Promise<
  { name: string; uid: number; home: string; remove(): Promise<void> }
> {
  const name = `oart${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
  const home = `/tmp/${name}-home`;
  const r = await new Deno.Command("useradd", {
    args: ["-m", "-d", home, "-s", "/bin/sh", name],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`useradd: ${new TextDecoder().decode(r.stderr)}`);
  const id = await new Deno.Command("id", { args: ["-u", name], stdout: "piped" }).output();
  const uid = Number(new TextDecoder().decode(id.stdout).trim());
  return {
    name,
    uid,
    home,
    async remove() {
      await new Deno.Command("userdel", {
        args: ["-r", "-f", name],
        stdout: "null",
        stderr: "null",
      })
        .output();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

let nextDescriptorId = 50_000;

/**
 * A PASSIVE descriptor of a fresh job id for `rig` (no database row: oarexec needs none): the
 * job runs in its work directory, oarexec keeps its files in `tmp` and reports to `port`.
 */
export function testDescriptor(
  rig: Pick<ExecRig, "work" | "tmp" | "port">,
  over: Partial<OarexecDescriptor> = {},
): OarexecDescriptor {
  const jobId = nextDescriptorId++;
  return {
    job_id: jobId,
    array_id: jobId,
    array_index: 1,
    stdout_file: "OAR.%jobid%.stdout",
    stderr_file: "OAR.%jobid%.stderr",
    launching_directory: rig.work,
    job_env: null,
    node_file_db_fields: "network_address",
    node_file_db_fields_distinct_values: "resource_id",
    user: "root",
    job_user: "root",
    types: {},
    name: "t",
    project: "default",
    reservation: "None",
    walltime_seconds: 3600,
    command: "true",
    challenge: "chal",
    almighty_hostname: "127.0.0.1",
    almighty_port: rig.port,
    checkpoint_signal: 12,
    debug_mode: 0,
    mode: "PASSIVE",
    pro_epi_timeout: 10,
    prologue: "",
    epilogue: "",
    tmp_directory: rig.tmp,
    detach_oarexec: 1,
    cpuset_full_path: "",
    resources: [{ resource_id: 1, type: "default", network_address: "n1" }],
    ...over,
  };
}
