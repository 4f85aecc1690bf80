/**
 * Job execution end to end on real processes (docs/modules.md §4, §4.5, §5, §6): bipbip launches a
 * real oarexec through the local launcher, oarexec runs the command as the job's user and reports
 * over TCP to a listener standing in for the appendice proxy, and that report is fed to bipbip's
 * end-of-job mode. The last test runs the whole chain: appendice proxy, bipbip_commander's queue
 * and bipbip as real child processes.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import {
  alive,
  challengeOf,
  createUser,
  entryArgs,
  eventTypes,
  type ExecRig,
  execRig,
  jobState,
  killSessions,
  launchableJob,
  oarexecPid,
  pidsWithMarker,
  ReportListener,
} from "./support/exec_fixtures.ts";
import { waitFor } from "./support/proc.ts";
import { bindLoopback, freePort } from "./support/ports.ts";
import { bipbip, type BipbipContext } from "../modules/bipbip/bipbip.ts";
import { leon } from "../modules/leon/leon.ts";
import { LocalLauncher } from "../lib/launch/local.ts";
import { startSshd } from "./support/sshd.ts";
import { AGENT_SOCKET_NAME } from "../lib/exec/agent_path.ts";
import { isSpareDirectory } from "../modules/oarexec/recycled_files.ts";
import { makeLauncher } from "../lib/launch/launcher.ts";
import { pingchecker } from "../lib/resource/pingchecker.ts";
import { runNodeChangeState } from "../modules/node_change_state/node_change_state.ts";
import { launcherSignaller } from "../lib/launch/oarexec_signal.ts";
import { fragJob, fragState } from "../lib/job/frag.ts";
import { getJob } from "../lib/job/jobs.ts";
import { parseCommanderMessage, parseLegacyLine } from "../lib/protocol/mod.ts";
import { AppendiceProxy } from "../modules/appendice_proxy/proxy.ts";
import { Commander, processSpawner } from "../modules/bipbip_commander/commander.ts";
import { PullSocket, terminate } from "../lib/transport/zmq.ts";

function ctxFor(rig: ExecRig): BipbipContext {
  return {
    sql: rig.db.sql,
    config: rig.config,
    log: rig.log,
    notifier: rig.notifier,
    launcher: new LocalLauncher(rig.config, rig.log),
    unreachable: () => Promise.resolve([]),
  };
}

/** NodeChangeState acting on the events (another module; here to see the final states). */
async function nodeChangeState(ctx: BipbipContext): Promise<void> {
  await runNodeChangeState({
    sql: ctx.sql as never,
    config: ctx.config,
    log: ctx.log,
    notifier: ctx.notifier,
    signaller: launcherSignaller(ctx.launcher),
  });
}

/** What the appendice proxy and bipbip_commander do with a report line, in-process. */
async function deliver(ctx: BipbipContext, line: string): Promise<number> {
  const parsed = parseLegacyLine(line);
  assertOk(parsed.ok && parsed.value.kind === "commander", line);
  const msg = parsed.value.message;
  return await bipbip(ctx, [String(msg.job_id), ...msg.args]);
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("a job runs, reports, and ends with its exit code and output files", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, {
      name: "first",
      command: 'echo "out $OAR_JOB_ID $OAR_JOB_NAME $OAR_USER"; echo err >&2; ' +
        'cat "$OAR_NODEFILE"; echo "wd=$(pwd) w=$OAR_JOB_WALLTIME_SECONDS"',
      walltime: 600,
    });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    assertEquals(await jobState(db.sql, jobId), "Running");
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertEquals(line, `OAREXEC_${jobId}_0_0_${await challengeOf(db.sql, jobId)}`);
    assertEquals(await deliver(ctx, line), 0);
    assertEquals(await jobState(db.sql, jobId), "Finishing");
    assertEquals((await getJob(db.sql, jobId))!.exit_code, 0);
    assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_TERMINATE_STATE"]);
    assertOk(rig.notifier.almightyCommands.includes("Term"));
    assertEquals(rig.notifier.almightyCommands.at(-1), "BipBip");
    await nodeChangeState(ctx);
    assertEquals(await jobState(db.sql, jobId), "Terminated");
    const out = await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stdout`));
    assertEquals(
      out,
      `out ${jobId} first root\nnode-a\nnode-b\nwd=${rig.work} w=600\n`,
    );
    assertEquals(await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stderr`)), "err\n");
    // oarexec cleaned up after itself (the agent's socket and spare files stay while it does).
    assertEquals(
      [...Deno.readDirSync(rig.tmp)].map((e) => e.name)
        .filter((n) => n !== AGENT_SOCKET_NAME && !isSpareDirectory(n)),
      [],
    );
    // A late duplicate of the report changes nothing.
    assertEquals(await deliver(ctx, line), 1);
    assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_TERMINATE_STATE"]);
  } finally {
    await listener.close();
  }
});

Deno.test("a failing command ends with its non-zero exit code recorded", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, { command: "exit 99" });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertOk(line.startsWith(`OAREXEC_${jobId}_0_25344_`), line);
    assertEquals(await deliver(ctx, line), 0);
    assertEquals((await getJob(db.sql, jobId))!.exit_code, 25344);
    assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_TERMINATE_STATE"]);
    await nodeChangeState(ctx);
    assertEquals(await jobState(db.sql, jobId), "Terminated");
  } finally {
    await listener.close();
  }
});

Deno.test("a missing working directory ends in WORKING_DIRECTORY (exit 10)", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, {
      command: "true",
      launchingDirectory: join(rig.dir, "nowhere"),
    });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertOk(line.startsWith(`OAREXEC_${jobId}_10_N_`), line);
    assertEquals(await deliver(ctx, line), 0);
    assertEquals(await eventTypes(db.sql, jobId), [
      "SWITCH_INTO_ERROR_STATE",
      "WORKING_DIRECTORY",
    ]);
    assertEquals((await getJob(db.sql, jobId))!.exit_code, null);
    await nodeChangeState(ctx);
    assertEquals(await jobState(db.sql, jobId), "Error");
  } finally {
    await listener.close();
  }
});

Deno.test("a 70 KB command runs: oarexec reads what oarsub accepts", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, { command: "true # " + "x".repeat(70_000) });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertOk(line.startsWith(`OAREXEC_${jobId}_0_0_`), line);
    assertEquals(await deliver(ctx, line), 0);
    assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_TERMINATE_STATE"]);
  } finally {
    await listener.close();
  }
});

Deno.test(
  "an output file that cannot be opened ends in Error with OUTPUT_FILES (exit 20)",
  opts,
  async () => {
    await using db = await createTestDb();
    const rig = await execRig(db);
    const listener = new ReportListener(rig.port);
    try {
      const jobId = await launchableJob(db.sql, rig, { command: "echo never" });
      await db.sql`UPDATE jobs SET stdout_file = ${join(rig.dir, "no-such-dir", "out")}
      WHERE job_id = ${jobId}`;
      const ctx = ctxFor(rig);
      assertEquals(await bipbip(ctx, [String(jobId)]), 0);
      const line = await listener.line(`OAREXEC_${jobId}_`);
      assertOk(line.startsWith(`OAREXEC_${jobId}_20_N_`), line);
      assertEquals(await deliver(ctx, line), 0);
      assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_ERROR_STATE", "OUTPUT_FILES"]);
      await nodeChangeState(ctx);
      assertEquals(await jobState(db.sql, jobId), "Error");
    } finally {
      await listener.close();
    }
  },
);

Deno.test("a node prologue failure ends in PROLOGUE_ERROR without a rendezvous", opts, async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir({ prefix: "oar-prologue-" });
  db.addTempDir(dir);
  const prologue = join(dir, "prologue.sh");
  await Deno.writeTextFile(prologue, '#!/bin/sh\necho "$@" > ' + join(dir, "args") + "\nexit 3\n");
  await Deno.chmod(prologue, 0o755);
  const rig = await execRig(db, { PROLOGUE_EXEC_FILE: prologue });
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, { command: "touch should-not-exist" });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    assertEquals(await jobState(db.sql, jobId), "Finishing");
    assertEquals(await eventTypes(db.sql, jobId), ["PROLOGUE_ERROR"]);
    await nodeChangeState(ctx);
    assertEquals(await jobState(db.sql, jobId), "Error");
    assertEquals(
      (await Deno.readTextFile(join(dir, "args"))).trim(),
      `${jobId} root ${join(rig.tmp, String(jobId))}`,
    );
    assertEquals(listener.lines, []);
    assertOk(!(await Deno.stat(join(rig.work, "should-not-exist")).catch(() => null)));
  } finally {
    await listener.close();
  }
});

Deno.test("the job runs as its user, not as root", opts, async () => {
  await using db = await createTestDb();
  const user = await createUser();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  try {
    const jobId = await launchableJob(db.sql, rig, {
      user: user.name,
      command: 'id -u; id -g; echo "$HOME $USER $LOGNAME"; touch mine',
    });
    const ctx = ctxFor(rig);
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertOk(line.startsWith(`OAREXEC_${jobId}_0_0_`), line);
    const out = (await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stdout`))).split("\n");
    assertEquals(out[0], String(user.uid));
    assertEquals(out[2], `${user.home} ${user.name} ${user.name}`);
    assertEquals((await Deno.stat(join(rig.work, "mine"))).uid, user.uid);
    assertEquals((await Deno.stat(join(rig.work, `OAR.${jobId}.stdout`))).uid, user.uid);
  } finally {
    await listener.close();
    await user.remove();
  }
});

Deno.test("a report that cannot be delivered at first arrives later", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db, { OAREXEC_DEBUG_MODE: 1 });
  const jobId = await launchableJob(db.sql, rig, { command: "exit 0" });
  const ctx = ctxFor(rig);
  assertEquals(await bipbip(ctx, [String(jobId)]), 0);
  // The server is "down": wait for oarexec to have failed at least once.
  await waitFor("a failed report attempt", async () => {
    try {
      return (await Deno.readTextFile(join(rig.tmp, `oarexec_${jobId}.log`)))
        .includes("cannot notify the server");
    } catch {
      return false;
    }
  }, 15_000);
  const listener = new ReportListener(rig.port);
  try {
    const line = await listener.line(`OAREXEC_${jobId}_`, 20_000);
    assertOk(line.startsWith(`OAREXEC_${jobId}_0_0_`));
    assertEquals(await deliver(ctx, line), 0);
    assertEquals(await jobState(db.sql, jobId), "Finishing");
    // Delivered once: no duplicate follows.
    assertEquals(listener.lines.filter((l) => l.startsWith(`OAREXEC_${jobId}_`)).length, 1);
  } finally {
    await listener.close();
  }
});

Deno.test(
  "a forged report changes nothing; oardel + leon kill the job's process tree",
  opts,
  async () => {
    await using db = await createTestDb();
    const rig = await execRig(db);
    const listener = new ReportListener(rig.port);
    const marker = `oar-e2e-${crypto.randomUUID()}`;
    try {
      const jobId = await launchableJob(db.sql, rig, {
        command: `sleep 300 & sleep 301 # ${marker}`,
      });
      const ctx = ctxFor(rig);
      assertEquals(await bipbip(ctx, [String(jobId)]), 0);
      assertEquals(await jobState(db.sql, jobId), "Running");
      const pid = await oarexecPid(rig, jobId);
      await waitFor("the user's processes", () => pidsWithMarker(marker).length > 0);

      // A forged report: wrong challenge.
      assertEquals(await deliver(ctx, `OAREXEC_${jobId}_0_0_forged`), 2);
      assertEquals(await eventTypes(db.sql, jobId), ["BIPBIP_CHALLENGE"]);
      assertEquals(await jobState(db.sql, jobId), "Running");
      assertOk(alive(pid));

      // oardel, then leon's kill pass.
      assertEquals(await fragJob(db.sql, jobId, "root"), 0);
      assertEquals(await leon({ ...ctx, signaller: launcherSignaller(ctx.launcher) }, []), 0);
      assertEquals(await fragState(db.sql, jobId), "TIMER_ARMED");
      const line = await listener.line(`OAREXEC_${jobId}_`);
      assertOk(line.startsWith(`OAREXEC_${jobId}_3_9_`), line);
      assertEquals(pidsWithMarker(marker), []);
      assertStringIncludes(
        await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stderr`)),
        `Job ${jobId} KILLED`,
      );
      assertEquals(await deliver(ctx, line), 0);
      assertEquals(await jobState(db.sql, jobId), "Finishing");
      assertEquals(await eventTypes(db.sql, jobId), [
        "BIPBIP_CHALLENGE",
        "FRAG_JOB_REQUEST",
        "SEND_KILL_JOB",
        "SWITCH_INTO_ERROR_STATE",
      ]);
      // oarexec is done with the job (the local agent, which ran it, lives on for others).
      await waitFor("oarexec to be done with the job", () => {
        try {
          Deno.statSync(join(rig.tmp, `pid_of_oarexec_for_jobId_${jobId}`));
          return false;
        } catch {
          return true;
        }
      });
    } finally {
      killSessions(pidsWithMarker(marker));
      await listener.close();
    }
  },
);

Deno.test("whole chain: proxy, commander queue and bipbip children run a job", opts, async () => {
  await using db = await createTestDb();
  const almighty = new PullSocket();
  const almightyPort = bindLoopback(almighty);
  const commanderPort = await freePort();
  const rig = await execRig(db, {
    APPENDICE_SERVER_PORT: almightyPort,
    BIPBIP_COMMANDER_SERVER: "127.0.0.1",
    BIPBIP_COMMANDER_PORT: commanderPort,
  });
  const received: string[] = [];
  const commander = new Commander({
    max: 4,
    childTimeoutMs: 60_000,
    spawn: processSpawner((module, args) => ({
      program: Deno.execPath(),
      args: entryArgs(module, rig.config, args),
      env: { OARCONFFILE: rig.confPath },
    })),
  });
  const proxy = new AppendiceProxy({
    almighty: (text) => Promise.resolve(void received.push(text)),
    commander: (text) => {
      const m = parseCommanderMessage(text);
      if (m.ok) commander.enqueue(m.value);
      return Promise.resolve();
    },
  }, { hostname: "127.0.0.1", port: rig.port });
  const pulled: string[] = [];
  const stop = new AbortController();
  const pulling = (async () => {
    while (!stop.signal.aborted) {
      const m = await almighty.receive({ signal: stop.signal });
      if (m) pulled.push(new TextDecoder().decode(m));
    }
  })();
  try {
    const jobId = await launchableJob(db.sql, rig, { command: "echo chained; exit 7" });
    commander.enqueue({ job_id: jobId, cmd: "OARRUN", args: [] });
    await waitFor(
      "the job to end",
      async () => (await jobState(db.sql, jobId)) === "Finishing",
      30_000,
    );
    await commander.idle();
    assertEquals((await getJob(db.sql, jobId))!.exit_code, 7 << 8);
    assertEquals(await eventTypes(db.sql, jobId), ["SWITCH_INTO_TERMINATE_STATE"]);
    assertEquals(await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stdout`)), "chained\n");
    await waitFor(
      "Term and BipBip",
      () => pulled.some((m) => m.includes('"Term"')) && pulled.some((m) => m.includes('"BipBip"')),
    );
    assertEquals(commander.stats.started, 2);
  } finally {
    stop.abort();
    await pulling;
    await commander.stop();
    await proxy.stop();
    almighty.close();
    await terminate();
  }
});

// ---------------------------------------------------------------------------------------------
// The ssh launcher against a real sshd on 127.0.0.1 (test keys, a port of its own).

Deno.test("ssh launcher: a job started and killed through a real sshd", opts, async () => {
  await using db = await createTestDb();
  const dir = await Deno.makeTempDir({ prefix: "oar-sshd-" });
  db.addTempDir(dir);
  const sshd = await startSshd(dir);
  const conf0 = join(dir, "node-oar.conf");
  const rig = await execRig(db, {
    OAREXEC_LAUNCHER: "ssh",
    OPENSSH_CMD: `/usr/bin/ssh -p ${sshd.port} -i ${sshd.key} -oStrictHostKeyChecking=no ` +
      `-oUserKnownHostsFile=/dev/null -oLogLevel=ERROR`,
    // The node's oarexec, with the node's configuration (here: the same file).
    OAREXEC_REMOTE_CMD: `OARCONFFILE=${conf0} ${Deno.execPath()} run --quiet --allow-all ` +
      join(Deno.cwd(), "modules", "oarexec", "main.ts"),
  });
  await Deno.copyFile(rig.confPath, conf0);
  const listener = new ReportListener(rig.port);
  const marker = `oar-ssh-${crypto.randomUUID()}`;
  try {
    const ctx: BipbipContext = {
      ...ctxFor(rig),
      launcher: makeLauncher(rig.config, rig.log),
      // SERVER_HOSTNAME is 127.0.0.1: the node reaches the server there (one host here).
      hostname: () => "127.0.0.1",
    };
    assertEquals(ctx.launcher.kind, "ssh");
    const jobId = await launchableJob(db.sql, rig, {
      hosts: ["127.0.0.1"],
      command: `echo via-ssh; sleep 300 # ${marker}`,
    });
    const t0 = performance.now();
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    const launchMs = performance.now() - t0;
    assertEquals(await jobState(db.sql, jobId), "Running");
    await oarexecPid(rig, jobId);
    assertEquals(await fragJob(db.sql, jobId, "root"), 0);
    assertEquals(await leon({ ...ctx, signaller: launcherSignaller(ctx.launcher) }, []), 0);
    const line = await listener.line(`OAREXEC_${jobId}_`);
    assertOk(line.startsWith(`OAREXEC_${jobId}_3_9_`), line);
    assertEquals(await deliver(ctx, line), 0);
    assertEquals(await eventTypes(db.sql, jobId), [
      "FRAG_JOB_REQUEST",
      "SEND_KILL_JOB",
      "SWITCH_INTO_ERROR_STATE",
    ]);
    assertEquals(
      (await Deno.readTextFile(join(rig.work, `OAR.${jobId}.stdout`))).trim(),
      "via-ssh",
    );
    console.log(`ssh launch to Running: ${launchMs.toFixed(0)} ms`);
  } finally {
    killSessions(pidsWithMarker(marker));
    await listener.close();
    await sshd.stop();
  }
});

Deno.test(
  "OAREXEC_LOCAL_HOSTS: under the ssh launcher, those hosts' jobs run here",
  opts,
  async () => {
    await using db = await createTestDb();
    // Any ssh attempt fails: a job can only run if it goes through the local launcher.
    const rig = await execRig(db, {
      OAREXEC_LAUNCHER: "ssh",
      OPENSSH_CMD: "/bin/false",
      OAREXEC_LOCAL_HOSTS: "node-a node-b",
    });
    const listener = new ReportListener(rig.port);
    try {
      const launcher = makeLauncher(rig.config, rig.log);
      const ctx: BipbipContext = {
        ...ctxFor(rig),
        launcher,
        unreachable: async (hosts) => (await pingchecker(hosts, rig.config)).bad,
      };
      const local = await launchableJob(db.sql, rig, { command: "echo here" });
      assertEquals(await bipbip(ctx, [String(local)]), 0);
      assertEquals(await jobState(db.sql, local), "Running");
      assertOk((await listener.line(`OAREXEC_${local}_`)).startsWith(`OAREXEC_${local}_0_0_`));
      assertEquals(
        (await Deno.readTextFile(join(rig.work, `OAR.${local}.stdout`))).trim(),
        "here",
      );
      // A host not in the list goes through ssh, whose node check fails for it.
      const remote = await launchableJob(db.sql, rig, { hosts: ["node-z"], command: "true" });
      assertEquals(await bipbip(ctx, [String(remote)]), 2);
      // Not launched: node_change_state ends it on that event (docs/modules.md §9.1).
      assertEquals(await jobState(db.sql, remote), "Launching");
      assertOk((await eventTypes(db.sql, remote)).includes("PING_CHECKER_NODE_SUSPECTED"));
    } finally {
      await listener.close();
    }
  },
);
