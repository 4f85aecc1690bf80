/**
 * Faults where job end reports are in flight (issue 11): a report lost inside bipbip_commander
 * comes again from its oarexec, which waits for its acknowledgement; and SIGKILLs at random
 * moments of a job stream — almighty (the server restarted on the same var dir), the proxy, the
 * commander, the bipbips, an oarexec — plus one restart of the database, in a seeded order
 * (OAR_TEST_SEED replays a run). The checks are tests/support/fault_run.ts's.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import {
  almightyBack,
  auditJobs,
  daemonPid,
  modulePids,
  oarexecPids,
  restartDatabase,
} from "./support/fault_helpers.ts";
import {
  type FaultRecorder,
  faultRun,
  inState,
  kill,
  killCompanion,
  shortJobs,
  sleep,
  type Submit,
  submitAll,
} from "./support/fault_run.ts";
import { waitFor } from "./support/proc.ts";
import type { TestServer } from "./support/server.ts";

Deno.test("faults: an end report lost inside bipbip_commander is sent again by its oarexec", async () => {
  await faultRun("lost report", async ({ server, db, submit, log, faults }) => {
    const [id] = await submitAll(submit, ["sleep 3"]);
    await waitFor(
      "the job to run",
      async () => (await inState(db, [id], "Running")).length === 1,
      30_000,
    );
    const pid = await daemonPid(server.varDir, "bipbip_commander");
    assertOk(pid !== undefined);
    // Frozen, the commander still takes the proxy's message into its socket buffers, and
    // loses it with them when it is killed: before acknowledged reports, the job stayed
    // Running for good.
    Deno.kill(pid, "SIGSTOP");
    const dir = `${server.varDir}/oarexec`;
    const exists = (f: string) => Deno.stat(f).then(() => true, () => false);
    const listing = async () => {
      const files = [];
      for await (const f of Deno.readDir(dir)) files.push(f.name);
      return `${dir} holds ${files.join(" ")}`;
    };
    assertOk(
      await exists(`${dir}/${id}`),
      `job ${id} still runs once the commander is frozen: ${await listing()}`,
    );
    // The node file goes at the job's end, the pid file once the report is acknowledged.
    await waitFor(
      "oarexec to report",
      async () =>
        !(await exists(`${dir}/${id}`)) && await exists(`${dir}/pid_of_oarexec_for_jobId_${id}`),
      20_000,
    ).catch(async (e) => {
      const files = [];
      for await (const f of Deno.readDir(dir)) files.push(f.name);
      throw new Error(
        `${e.message}: job ${id}, ${dir} holds ${files.join(" ")}\n${server.log.slice(-6000)}`,
      );
    });
    // The proxy forwards the line as it comes; a moment for it to reach the frozen commander.
    await sleep(500);
    assertEquals((await inState(db, [id], "Running")).length, 1);
    const inFlight = await faults.before();
    kill(pid);
    await waitFor("bipbip_commander to be restarted", async () => {
      const now = await daemonPid(server.varDir, "bipbip_commander");
      return now !== undefined && now !== pid;
    }, 15_000);
    faults.repaired("bipbip_commander (report lost with it)", inFlight);
    const t0 = performance.now();
    await waitFor("the job to end", async () => {
      const [r] = await auditJobs(db, [id]);
      return r.state === "Terminated";
    }, 30_000);
    log.push(
      `report lost with the commander; job ${id} Terminated ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s after the restart`,
    );
    return { ids: [id], restarts: 1 };
  });
});

Deno.test("faults: the database down 20 s while jobs end; their reports are in within seconds of its return", async () => {
  await faultRun("database outage", async ({ server, db, submit, log, faults }) => {
    // Jobs that end during the outage: their reports fail (bipbip cannot reach the database)
    // and must be taken once it is back, not at oarexec's acknowledgement timeout (120 s).
    const ids = await submitAll(submit, ["sleep 2", "sleep 3", "sleep 4", "sleep 5"]);
    await waitFor(
      "the jobs to run",
      async () => (await inState(db, ids, "Running")).length === ids.length,
      30_000,
    );
    const inFlight = await faults.before();
    const t0 = performance.now();
    await restartDatabase(server.varDir, 20_000);
    faults.repaired("database (20 s outage)", inFlight);
    log.push(`database down ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // And the server still takes jobs (a submission may fail while the sessions reconnect).
    const after = await submitAll(async (command) => {
      for (let attempt = 0;; attempt++) {
        try {
          return await submit(command);
        } catch (e) {
          if (attempt >= 20) throw e;
          await sleep(500);
        }
      }
    }, shortJobs(2));
    return { ids: [...ids, ...after], restarts: 0 };
  });
});

/** The random-moment test's faults, each injected once, in a seeded order. */
const STREAM_FAULTS = [
  "almighty",
  "appendice_proxy",
  "bipbip_commander",
  "bipbip",
  "oarexec",
  "database",
] as const;

/** Kills almighty and waits until start has restarted it (as the almighty test). */
async function replaceAlmighty(server: TestServer, faults: FaultRecorder): Promise<boolean> {
  const inFlight = await faults.before();
  const pid = await daemonPid(server.varDir, "almighty");
  if (pid === undefined || !kill(pid)) return false;
  await almightyBack(server, pid);
  faults.repaired("almighty", inFlight);
  return true;
}

Deno.test("faults: SIGKILL at random moments of a job stream (almighty, proxy, commander, bipbip, oarexec, database restart)", async () => {
  await faultRun("stream", async ({ server, rng, submit, log, faults: recorder }) => {
    // Submissions go on through the faults: one refused while the server is down or the
    // database restarts is submitted again (a job inserted before the failure is audited all
    // the same: the audit takes every job of the database).
    let resubmissions = 0;
    const retrying: Submit = async (command) => {
      for (let attempt = 0;; attempt++) {
        try {
          return await submit(command);
        } catch (e) {
          if (attempt >= 60) throw e;
          resubmissions++;
          await sleep(500);
        }
      }
    };
    const commands = Array.from({ length: 24 }, (_, i) => ["true", "sleep 0.5", "sleep 2"][i % 3]);
    const stream = submitAll(retrying, commands, 2);
    const faults = [...STREAM_FAULTS];
    for (let i = faults.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [faults[i], faults[j]] = [faults[j], faults[i]];
    }
    let restarts = 0;
    const orphaned: number[] = [];
    const done: string[] = [];
    for (const f of faults) {
      await sleep(rng.int(200, 1500));
      if (f === "almighty") {
        if (await replaceAlmighty(server, recorder)) done.push("almighty (server restarted)");
      } else if (f === "appendice_proxy" || f === "bipbip_commander") {
        if (await killCompanion(server, f, recorder)) {
          restarts++;
          done.push(f);
        }
      } else if (f === "bipbip") {
        let n = 0;
        const inFlight = await recorder.before();
        for (const pid of await modulePids(server.varDir, "bipbip")) if (kill(pid)) n++;
        recorder.repaired("bipbip", inFlight);
        done.push(`${n} bipbip`);
      } else if (f === "oarexec") {
        // A job's oarexec, once one runs (the stream has 2 s jobs).
        const dir = `${server.varDir}/oarexec`;
        const pids = await waitFor("an oarexec to kill", async () => {
          const p = await oarexecPids(dir);
          return p.size > 0 ? p : undefined;
        }, 20_000).catch(() => new Map<number, number>());
        const victims = [...pids.entries()];
        if (victims.length > 0) {
          const [, pid] = rng.pick(victims);
          const inFlight = await recorder.before();
          if (kill(pid)) {
            for (const [job, p] of victims) if (p === pid) orphaned.push(job);
            // Nothing restarts it: its jobs end through sarko's lost-oarexec check.
            recorder.repaired("oarexec", inFlight, orphaned);
            done.push(`oarexec ${pid} (job ${orphaned.join(",")})`);
          }
        }
      } else {
        const t0 = performance.now();
        const inFlight = await recorder.before();
        await restartDatabase(server.varDir);
        recorder.repaired("database", inFlight);
        done.push(`database (down ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
    const ids = await stream;
    log.push(`faults: ${done.join(", ")}; ${resubmissions} submissions retried`);
    return {
      ids,
      restarts,
      almightyReplaced: true,
      orphaned,
      faults: done.length,
      expectedFaults: faults.length,
    };
  });
});
