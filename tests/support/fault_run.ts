/**
 * The frame of the fault tests (issue 11; tests/fault_test.ts, tests/fault_stream_test.ts): a
 * whole server with fast failure detection, a scenario that submits jobs and injects faults,
 * then the checks every fault must pass: every job final, once, its end explained by its
 * events; none launched twice; almighty itself alive unless the scenario replaced it; no pid
 * file left behind; and each fault recovered from in seconds (issue 22: the time from its repair
 * to the last affected job's final state is printed, and bounded).
 */
import { assertEquals, assertOk } from "./assert.ts";
import {
  allJobIds,
  auditJobs,
  daemonPid,
  diagnose,
  type FaultMark,
  type InFlight,
  jobsInFlight,
  jobsWithEvent,
  modulePids,
  pidFilesLeft,
  recoveries,
  Rng,
  serverDb,
  testSeed,
  unexplainedEnds,
} from "./fault_helpers.ts";
import { waitFor } from "./proc.ts";
import { TestServer } from "./server.ts";
import { dbNow, type Sql } from "../../lib/db/client.ts";

/**
 * Two sarko periods (10 s each, after the fast-forward below) and the frag/kill path, within
 * the periodic scheduling round (every 60 s, which runs node_change_state after it): the
 * server's last resort for a notification lost with a killed process that nothing else
 * retakes. How long the wait took is printed: a slow recovery shows.
 */
export const FINAL_DEADLINE_MS = 90_000;
/**
 * sarko's stuck-job limits are 2×TIMEOUT_SSH (+ SERVER_PROLOGUE_EPILOGUE_TIMEOUT for Finishing)
 * plus a fixed 60 s margin (modules/sarko/stuck_jobs.ts). A job still in Launching/Finishing this long
 * after entering it is past every limit the modules enforce (2 s here), so it can only be stuck:
 * its open state log row is moved back by the margin, which is what waiting for it would do.
 */
const STUCK_AFTER_S = 6;
const SARKO_MARGIN_S = 60;

/** Keys written after the first start, which creates the oar.conf (start keeps it after). */
const FAST_FAILURE = {
  TIMEOUT_SSH: 1,
  LEON_SOFT_WALLTIME: 1,
  LEON_WALLTIME: 2,
  SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: 1,
  SERVER_PROLOGUE_EPILOGUE_TIMEOUT: 1,
  // Exterminating a stuck job suspects its nodes (its oarexec may run there); finaud brings
  // them back once they answer, so the jobs still waiting can run.
  FINAUD_FREQUENCY: 2,
  // OAREXEC_REPORT_ACK_TIMEOUT keeps its default (120 s), as on a real server: a report lost
  // with a killed process must come back through the server's own recovery (issue 22), not
  // through a short acknowledgement timeout. A Running job's oarexec is checked at every sarko
  // run once the job has run 1 s, and a job seen without it at two runs ends.
  OAREXEC_CHECK_INTERVAL: 1,
  OAREXEC_CHECK_MIN_AGE: 1,
  OAREXEC_LOST_GRACE: 1,
};

/**
 * The bound on each fault's recovery time (issue 22 asks for 10 s): the margin is for CI's two
 * cores running the whole suite in parallel; the real figure is printed.
 */
export const RECOVERY_BOUND_S = 30;
/**
 * A killed oarexec is no server process: nothing restarts it, and its jobs end once sarko's
 * periodic check has seen it gone twice (OAREXEC_LOST_GRACE apart), at two sarko runs, then
 * Leon's extermination: about two sarko periods (10 s each here).
 */
export const LOST_OAREXEC_BOUND_S = 60;
/** A pid file still there this long after every job is final is left behind. */
const PID_FILES_GRACE_MS = 15_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What a scenario tells the recovery measure: `before()` just before injecting a fault (the
 * jobs in flight), `repaired(name, those)` once it is repaired (see FaultMark).
 */
export class FaultRecorder {
  readonly marks: FaultMark[] = [];
  constructor(readonly db: Sql) {}

  async before(): Promise<InFlight[]> {
    return await tolerant(() => jobsInFlight(this.db)) ?? [];
  }

  repaired(fault: string, inFlight: InFlight[], hit?: number[]): void {
    this.marks.push({ fault, inFlight, repairedAt: Date.now(), hit });
  }
}

/** Fast-forwards sarko's clock for the jobs stuck past STUCK_AFTER_S; their ids. */
export async function ageStuckJobs(db: Sql, ids: number[]): Promise<number[]> {
  const now = await dbNow(db);
  const rows = await db<{ job_id: number }[]>`
    UPDATE job_state_logs SET date_start = date_start - ${SARKO_MARGIN_S}
    WHERE job_id = ANY(${ids}::int[]) AND date_stop = 0
      AND job_state IN ('Launching', 'Finishing')
      AND date_start < ${now - STUCK_AFTER_S} AND date_start > ${now - SARKO_MARGIN_S}
    RETURNING job_id`;
  return rows.map((r) => r.job_id);
}

export function kill(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGKILL");
    return true;
  } catch {
    return false; // already gone
  }
}

/**
 * Kills a supervised companion and waits for almighty to start a new one (the repair, for
 * `faults`).
 */
export async function killCompanion(
  server: TestServer,
  module: string,
  faults?: FaultRecorder,
): Promise<boolean> {
  const inFlight = await faults?.before();
  const pid = await daemonPid(server.varDir, module);
  if (pid === undefined || !kill(pid)) return false;
  await waitFor(`${module} to be restarted`, async () => {
    const now = await daemonPid(server.varDir, module);
    return now !== undefined && now !== pid;
  }, 15_000);
  faults?.repaired(module, inFlight ?? []);
  return true;
}

/** A job and what it runs. */
export type Submit = (command: string) => Promise<number>;

export interface Scenario {
  /** Submits jobs and injects faults; returns the ids and the restarts it observed. */
  (ctx: {
    server: TestServer;
    db: Sql;
    rng: Rng;
    submit: Submit;
    log: string[];
    faults: FaultRecorder;
  }): Promise<{
    ids: number[];
    restarts: number;
    almightyReplaced?: boolean;
    stuck?: number[];
    /** Jobs whose oarexec was killed: they end in Error (sarko) unless their report was in. */
    orphaned?: number[];
    faults?: number;
    expectedFaults?: number;
  }>;
}

/** Nodes an exterminated job left Suspected are set Alive again, as the admin would. */
async function healNodes(server: TestServer, db: Sql): Promise<void> {
  const [r] = await db<{ n: number }[]>`
    SELECT count(*)::int AS n FROM resources WHERE state = 'Suspected'`;
  if (r.n === 0) return;
  await server.task(["oarnodesetting", "-s", "Alive", "-h", "node1", "-h", "node2"]);
}

/** A probe that sees a database restart as "not yet". */
async function tolerant<T>(probe: () => Promise<T>): Promise<T | undefined> {
  try {
    return await probe();
  } catch {
    return undefined;
  }
}

/**
 * The frame of each fault test: a server with fast failure detection, the scenario, then the
 * checks every fault must pass: every job final, once; none launched twice; almighty itself
 * alive (the restarts were the supervisor's).
 */
export async function faultRun(
  name: string,
  scenario: Scenario,
  config: Record<string, string | number> = {},
): Promise<void> {
  const seed = testSeed();
  console.log(`${name}: seed ${seed} (OAR_TEST_SEED=${seed} to replay)`);
  const rng = new Rng(seed);
  await using server = await TestServer.create();
  const work = await Deno.makeTempDir({ prefix: "oar-fault-work-" });
  let db: Sql | null = null;
  try {
    // The first start writes oar.conf; the keys added then are read by the second.
    await server.start();
    assertEquals(await server.stop(), 0, server.log);
    await server.configure({ ...FAST_FAILURE, ...config });
    await server.start();
    const almightyPid = await daemonPid(server.varDir, "almighty");
    assertOk(almightyPid, "almighty runs");
    db = serverDb(server.confPath);
    const sql = db;
    const submit: Submit = (command) => server.submit(["-d", work, "-l", "core=1", command]);
    const log: string[] = [];
    // The database's clock minus ours (state log times are the database's).
    const offsetS = await dbNow(sql) - Date.now() / 1000;
    const faults = new FaultRecorder(sql);
    const out = await scenario({ server, db: sql, rng, submit, log, faults });
    const { restarts, almightyReplaced, stuck: stuckEarly, orphaned = [] } = out;
    console.log(`${name}: ${log.join("; ")}`);
    if (out.expectedFaults !== undefined) {
      assertEquals(out.faults, out.expectedFaults, "every fault was injected");
    }
    // Every job of the database: one whose oarsub failed after inserting it counts too.
    const ids = [...new Set([...out.ids, ...await allJobIds(sql)])].sort((a, b) => a - b);

    const stuck = new Set<number>(stuckEarly);
    let lastHeal = 0;
    const waitStart = performance.now();
    await waitFor("every job to reach a final state", async () => {
      const rows = await tolerant(async () => {
        for (const id of await ageStuckJobs(sql, ids)) stuck.add(id);
        if (Date.now() - lastHeal > 3000) {
          lastHeal = Date.now();
          await healNodes(server, sql);
        }
        return await auditJobs(sql, ids);
      });
      return rows !== undefined && rows.length === ids.length &&
        rows.every((r) => r.state === "Terminated" || r.state === "Error");
    }, FINAL_DEADLINE_MS).catch(async (e) => {
      // The diagnosis last: a truncated report (CI keeps the tail) still shows it.
      const daemons = await Promise.all(
        ["almighty", "appendice_proxy", "bipbip_commander"].map(async (m) =>
          `${m} ${(await modulePids(server.varDir, m)).join(",") || "gone"}`
        ),
      );
      throw new Error(
        `${server.log.slice(-8000)}\n${await diagnose(sql, ids)}\n` +
          `daemons: ${daemons.join(", ")}\n${e.message}`,
      );
    });
    console.log(
      `${name}: every job final ${((performance.now() - waitStart) / 1000).toFixed(1)} s ` +
        `after the scenario`,
    );
    const rows = await auditJobs(sql, ids);
    const terminated = rows.filter((r) => r.state === "Terminated").length;
    const errors = rows.filter((r) => r.state === "Error").length;
    const lost = await jobsWithEvent(sql, ids, "SARKO_STUCK_JOB");
    const duplicates = server.log.split("\n").filter((l) =>
      /report for a job in state "?\w+"?: ignored/.test(l)
    ).length;
    const lostLaunches = server.log.split("\n").filter((l) =>
      /the launch of job \d+ died before it reported/.test(l)
    ).length;
    const rejected = server.log.split("\n").filter((l) =>
      /closing a report's connection/.test(l)
    ).length;
    console.log(
      `${name}: submitted ${ids.length}, Terminated ${terminated}, Error ${errors}, ` +
        `companion restarts ${restarts}, stuck jobs fast-forwarded ${
          [...stuck].join(" ") || "none"
        }, ended by sarko ${lost.join(" ") || "none"}, ` +
        `duplicate reports ignored ${duplicates}, reports sent again at the server's request ${rejected}, ` +
        `lost launches looked at again ${lostLaunches}, oarexec killed for ${
          orphaned.join(" ") || "none"
        }`,
    );
    // Recovery per fault (issue 22). A job fast-forwarded out of Launching/Finishing above
    // makes its fault's figure too small: the list of those is printed with it.
    const recovered = await recoveries(sql, faults.marks, offsetS);
    for (const r of recovered) {
      console.log(
        `${name}: recovery after ${r.fault}: ${r.seconds.toFixed(1)} s ` +
          `(${r.caught} job(s) in flight, ${r.jobs} counted here${
            r.job === undefined ? "" : `, slowest ${r.job}`
          })`,
      );
    }
    // Each job's oarexec removes its pid file once its report is in; a killed one's is
    // recognised as stale and removed.
    const oarexecDir = `${server.varDir}/oarexec`;
    const pidWait = performance.now();
    const gone = async (ms: number) =>
      await waitFor("the jobs' pid files to go", async () => {
        const left = await pidFilesLeft(oarexecDir, ids);
        return left.length === 0 ? [] : undefined;
      }, ms).catch(async () => await pidFilesLeft(oarexecDir, ids));
    let leftovers = await gone(PID_FILES_GRACE_MS);
    if (leftovers.length > 0) {
      // A killed oarexec's files (dead pid) are removed by the next oarexec to start on its
      // host (modules/oarexec/agent.ts), or by sarko's check while their job runs: one more job.
      console.log(`${name}: pid files left: ${leftovers.join(", ")}; one more job to sweep them`);
      const extra = await submit("true");
      await waitFor("the extra job to end", async () => {
        const [r] = await tolerant(() => auditJobs(sql, [extra])) ?? [];
        return r?.state === "Terminated" || r?.state === "Error";
      }, 60_000);
      leftovers = await gone(PID_FILES_GRACE_MS);
    }
    console.log(
      `${name}: pid files left: ${leftovers.join(", ") || "none"} (${
        ((performance.now() - pidWait) / 1000).toFixed(1)
      } s after every job was final)`,
    );
    assertEquals(rows.length, ids.length);
    for (const r of recovered) {
      const bound = r.fault === "oarexec" ? LOST_OAREXEC_BOUND_S : RECOVERY_BOUND_S;
      assertOk(
        r.seconds <= bound,
        `recovery after ${r.fault} took ${r.seconds.toFixed(1)} s (bound ${bound} s)`,
      );
    }
    assertEquals(leftovers, [], "no pid file is left behind");
    for (const r of rows) {
      assertEquals(r.finals, 1, `job ${r.job_id} has ${r.finals} final state rows`);
      assertOk(r.launchings <= 1, `job ${r.job_id} was launched ${r.launchings} times`);
    }
    assertEquals(await unexplainedEnds(sql, ids), [], "every end is explained by its events");
    for (const id of orphaned) {
      const r = rows.find((x) => x.job_id === id)!;
      // Its oarexec could have been killed between its acknowledged report and its exit.
      assertOk(
        r.state === "Terminated" || lost.includes(id),
        `job ${id} lost its oarexec: it ends Terminated (report in) or by sarko, not ${r.state}`,
      );
    }
    if (!almightyReplaced) assertEquals(await daemonPid(server.varDir, "almighty"), almightyPid);
    assertEquals(await server.stop(), 0, server.log.slice(-5000));
  } finally {
    await db?.end();
    await Deno.remove(work, { recursive: true });
  }
}

/** Submits `commands`, `parallel` oarsub processes at a time; the ids in submission order. */
export async function submitAll(
  submit: Submit,
  commands: string[],
  parallel = 4,
): Promise<number[]> {
  const ids: number[] = new Array(commands.length);
  let next = 0;
  const worker = async () => {
    while (next < commands.length) {
      const i = next++;
      ids[i] = await submit(commands[i]);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ids;
}

/** Jobs of `ids` currently in `state`. */
export async function inState(db: Sql, ids: number[], state: string): Promise<number[]> {
  const rows = await db<{ job_id: number }[]>`
    SELECT job_id FROM jobs WHERE job_id = ANY(${ids}::int[]) AND state = ${state}`;
  return rows.map((r) => r.job_id);
}

export const shortJobs = (n: number) =>
  Array.from({ length: n }, (_, i) => i % 2 ? "true" : "sleep 0.5");
