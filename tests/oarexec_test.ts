/**
 * oarexec as a real process (docs/modules.md §4.5): the descriptor on stdin, a TCP listener for its
 * report; its exit codes, signals, node scripts and files. Plus the pure parts.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import {
  alive,
  type ExecRig,
  execRig,
  killSessions,
  oarexecPid,
  ReportListener,
  testDescriptor,
} from "./support/exec_fixtures.ts";
import { waitFor } from "./support/proc.ts";
import { denoRunArgs } from "../lib/permissions/mod.ts";
import { encodeOarexecDescriptor, type OarexecDescriptor } from "../lib/protocol/mod.ts";
import { finalExitCode, signalName, waitStatus } from "../lib/exec/exit_codes.ts";
import { nodeFileLines, resourceFileLines } from "../lib/exec/job_files.ts";
import { walltimeText } from "../lib/exec/run.ts";
import { awaitRendezvous } from "../lib/launch/rendezvous.ts";

const RDV = "oarexec is initialized and ready to do the job\n";

function descriptor(rig: ExecRig, over: Partial<OarexecDescriptor> = {}): OarexecDescriptor {
  return testDescriptor(rig, {
    resources: [
      { resource_id: 1, type: "default", network_address: "n1" },
      { resource_id: 2, type: "default", network_address: "n1" },
      { resource_id: 3, type: "default", network_address: "n0" },
    ],
    ...over,
  });
}

/**
 * Runs oarexec with its flags through the launchers' own handshake: once it met the
 * rendezvous it goes on alone (code null); otherwise its exit code.
 */
async function runOarexec(rig: ExecRig, input: string, args: string[] = ["--detached"]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs("oarexec", rig.config, args),
    env: { OARCONFFILE: rig.confPath },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const r = await awaitRendezvous(child, input, RDV.trim(), 20_000, () => child.kill("SIGKILL"));
  return { code: r.exitCode, stdout: r.rendezvous ? RDV : "", stderr: r.output };
}

const opts = { sanitizeResources: false, sanitizeOps: false };

/** Starts a job that goes on in the background; its oarexec is killed by `cleanup` if left. */
async function started(rig: ExecRig, d: OarexecDescriptor, live: number[]): Promise<number> {
  const r = await runOarexec(rig, encodeOarexecDescriptor(d));
  assertEquals(r.stdout, RDV, r.stderr);
  const pid = await oarexecPid(rig, d.job_id);
  live.push(pid);
  return pid;
}

/** Whatever a failed test left running: oarexec and the job's session (its child). */
function cleanup(live: number[]): void {
  for (const pid of live) {
    for (const child of childrenOf(pid)) killSessions([child]);
    killSessions([pid]);
  }
}

function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter((x) => x !== "").map(Number);
  } catch {
    return [];
  }
}

Deno.test("oarexec: pure parts", () => {
  const d = {
    resources: [
      { resource_id: 2, type: "default", network_address: "b" },
      { resource_id: 1, type: "default", network_address: "a" },
      { resource_id: 3, type: "frontal", network_address: "f" },
      { resource_id: 4, type: "default", network_address: "" },
    ],
    node_file_db_fields: "network_address",
    node_file_db_fields_distinct_values: "resource_id",
  };
  assertEquals(nodeFileLines(d as unknown as OarexecDescriptor), ["a", "b"]);
  assertEquals(
    resourceFileLines(
      { resources: [{ state: "Alive", type: "default", resource_id: 1 }] } as never,
    ),
    [" resource_id = '1' , type = 'default' "],
  );
  const o = {
    base: 0,
    killed: false,
    checkpointed: false,
    userSignalled: false,
    epilogueFailed: false,
  } as const;
  assertEquals(finalExitCode(o), 0);
  assertEquals(finalExitCode({ ...o, base: 10, epilogueFailed: true }), 12);
  assertEquals(finalExitCode({ ...o, killed: true }), 3);
  assertEquals(finalExitCode({ ...o, killed: true, epilogueFailed: true }), 4);
  assertEquals(finalExitCode({ ...o, checkpointed: true }), 40);
  assertEquals(finalExitCode({ ...o, checkpointed: true, epilogueFailed: true }), 41);
  assertEquals(finalExitCode({ ...o, userSignalled: true }), 42);
  assertEquals(signalName("12"), "SIGUSR2");
  assertEquals(signalName("term"), "SIGTERM");
  assertEquals(signalName("SIGURG"), "SIGURG");
  assertEquals(signalName("$(rm)"), null);
  assertEquals(waitStatus({ success: false, code: 99, signal: null }), 25344);
  assertEquals(waitStatus({ success: false, code: 137, signal: "SIGKILL" }), 9);
  assertEquals(walltimeText(3725), "1:02:05");
});

Deno.test("oarexec: bad or missing descriptors exit 31", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  assertEquals((await runOarexec(rig, "not json")).code, 31);
  assertEquals((await runOarexec(rig, JSON.stringify({ job_id: 3 }))).code, 31);
  // An unknown mode (INTERACTIVE is a mode oarexec runs: tests/interactive_test.ts).
  const badMode = JSON.stringify({ ...descriptor(rig), mode: "BATCH" });
  assertEquals((await runOarexec(rig, badMode)).code, 31);
});

Deno.test("oarexec: a tmp directory that cannot exist is exit 8", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  await Deno.writeTextFile(join(rig.dir, "file"), "");
  const d = descriptor(rig, { tmp_directory: join(rig.dir, "file", "sub") });
  const r = await runOarexec(rig, encodeOarexecDescriptor(d));
  assertEquals(r.code, 8);
  assertEquals(r.stdout, "");
});

Deno.test("oarexec: an unknown user is exit 7, before the rendezvous", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const d = descriptor(rig, { job_user: "no-such-user-oar" });
  const r = await runOarexec(rig, encodeOarexecDescriptor(d));
  assertEquals(r.code, 7);
  assertEquals(r.stdout, "");
  assertEquals([...Deno.readDirSync(rig.tmp)].length, 0);
});

Deno.test(
  "oarexec: relay mode returns at the rendezvous; the job goes on and reports",
  opts,
  async () => {
    await using db = await createTestDb();
    const rig = await execRig(db);
    const listener = new ReportListener(rig.port);
    try {
      const d = descriptor(rig, { command: 'echo "$OAR_NODEFILE $OAR_JOB_WALLTIME"; exit 5' });
      const r = await runOarexec(rig, encodeOarexecDescriptor(d), []);
      assertEquals(r.stdout, RDV, r.stderr);
      assertEquals(await listener.line(`OAREXEC_${d.job_id}_`), `OAREXEC_${d.job_id}_0_1280_chal`);
      assertEquals(
        await Deno.readTextFile(join(rig.work, `OAR.${d.job_id}.stdout`)),
        `${join(rig.tmp, String(d.job_id))} 1:00:00\n`,
      );
      // Its node, resource and pid files go, the pid file once the report is acknowledged.
      await waitFor("the job's files to go", () => [...Deno.readDirSync(rig.tmp)].length === 0);
    } finally {
      await listener.close();
    }
  },
);

Deno.test("oarexec: epilogue failure is 2, and 4 after a kill", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const epilogue = join(rig.dir, "epilogue.sh");
  await Deno.writeTextFile(epilogue, "#!/bin/sh\nexit 1\n");
  await Deno.chmod(epilogue, 0o755);
  const listener = new ReportListener(rig.port);
  const live: number[] = [];
  try {
    const a = descriptor(rig, { epilogue });
    assertEquals((await runOarexec(rig, encodeOarexecDescriptor(a))).stdout, RDV);
    assertOk((await listener.line(`OAREXEC_${a.job_id}_`)).startsWith(`OAREXEC_${a.job_id}_2_0_`));

    // The kill must find the command running (before it starts, nothing is killed: no 9).
    const mark = join(rig.work, "b.started");
    const b = descriptor(rig, { epilogue, command: `touch ${mark}; sleep 300` });
    const pid = await started(rig, b, live);
    await waitFor("the command to run", () => {
      try {
        return Deno.statSync(mark).isFile;
      } catch {
        return false;
      }
    });
    Deno.kill(pid, "SIGTERM");
    assertOk((await listener.line(`OAREXEC_${b.job_id}_`)).startsWith(`OAREXEC_${b.job_id}_4_9_`));
  } finally {
    cleanup(live);
    await listener.close();
  }
});

Deno.test("oarexec: checkpoint (USR2) is 40, a user signal (URG) is 42", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  const live: number[] = [];
  try {
    // The job exits when it gets its signal (checkpoint_signal 12 = USR2, then HUP).
    const trapped = (sig: string) =>
      `trap 'echo got-${sig}; exit 0' ${sig}; echo ready; while :; do sleep 0.1; done`;
    const a = descriptor(rig, { command: trapped("USR2") });
    const pidA = await started(rig, a, live);
    const out = join(rig.work, `OAR.${a.job_id}.stdout`);
    await waitFor(
      "the job to be ready",
      async () => (await Deno.readTextFile(out).catch(() => "")).includes("ready"),
    );
    Deno.kill(pidA, "SIGUSR2");
    assertOk((await listener.line(`OAREXEC_${a.job_id}_`)).startsWith(`OAREXEC_${a.job_id}_40_0_`));
    assertStringIncludes(await Deno.readTextFile(out), "got-USR2");
    assertStringIncludes(
      await Deno.readTextFile(join(rig.work, `OAR.${a.job_id}.stderr`)),
      `Job ${a.job_id} CHECKPOINTED with signal 12`,
    );

    const b = descriptor(rig, { command: trapped("HUP") });
    const pidB = await started(rig, b, live);
    const outB = join(rig.work, `OAR.${b.job_id}.stdout`);
    await waitFor(
      "the job to be ready",
      async () => (await Deno.readTextFile(outB).catch(() => "")).includes("ready"),
    );
    await Deno.writeTextFile(join(rig.tmp, `USER_SIGNAL_${b.job_id}`), "SIGHUP\n");
    Deno.kill(pidB, "SIGURG");
    assertOk((await listener.line(`OAREXEC_${b.job_id}_`)).startsWith(`OAREXEC_${b.job_id}_42_0_`));
    assertStringIncludes(await Deno.readTextFile(outB), "got-HUP");
  } finally {
    cleanup(live);
    await listener.close();
  }
});

Deno.test("oarexec: TSTP stops the job's processes, CONT resumes them", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  const live: number[] = [];
  try {
    const d = descriptor(rig, { command: "echo $$ > shell.pid; while :; do sleep 0.1; done" });
    const pid = await started(rig, d, live);
    const shell = await waitFor("the job's pid", async () => {
      const t = (await Deno.readTextFile(join(rig.work, "shell.pid")).catch(() => "")).trim();
      return t ? Number(t) : undefined;
    });
    const state = () => {
      const stat = Deno.readTextFileSync(`/proc/${shell}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    };
    Deno.kill(pid, "SIGTSTP");
    await waitFor("the job to stop", () => state() === "T");
    Deno.kill(pid, "SIGCONT");
    await waitFor("the job to resume", () => state() !== "T");
    Deno.kill(pid, "SIGTERM");
    assertOk((await listener.line(`OAREXEC_${d.job_id}_`)).startsWith(`OAREXEC_${d.job_id}_3_`));
  } finally {
    cleanup(live);
    await listener.close();
  }
});

Deno.test("oarexec: a PASSIVE job's oarsub -C sessions end with it", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  const listener = new ReportListener(rig.port);
  const live: number[] = [];
  const gate = join(rig.work, "end.now");
  const d = descriptor(rig, {
    command: `while [ ! -e ${gate} ]; do sleep 0.05; done`,
  });
  // As the session wrapper does it (cli/oarsub/shell.ts): the session records itself in
  // the job's session file, then runs its shell.
  const file = join(rig.tmp, `oarsub_connections_${d.job_id}`);
  let connection: Deno.ChildProcess | null = null;
  let wrapper = "";
  try {
    await started(rig, d, live);
    connection = new Deno.Command("sh", {
      args: [
        "-c",
        `sh -c "$1"; echo anchor-done`,
        "sh",
        `printf 'CONNECT %s %s\\n' "$PPID" "$$" >> '${file}'; exec sleep 600`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    wrapper = await waitFor("the connection", async () => {
      const text = await Deno.readTextFile(file).catch(() => "");
      return /^CONNECT \d+ (\d+)$/m.exec(text)?.[1];
    });
    Deno.writeTextFileSync(gate, "");
    assertOk((await listener.line(`OAREXEC_${d.job_id}_`)).startsWith(`OAREXEC_${d.job_id}_0_0_`));
    // The session's shell was killed with the job; the session (oarsub's side) noticed.
    await waitFor("the -C session to end with the job", () => !alive(Number(wrapper)), 10_000);
    const out = new TextDecoder().decode((await connection.output()).stdout);
    connection = null;
    assertEquals(out, "anchor-done\n");
  } finally {
    if (connection) {
      // A failed test leaves the session's shell: it goes, then the session.
      if (wrapper !== "") killSessions([Number(wrapper)]);
      try {
        connection.kill("SIGKILL");
      } catch { /* gone */ }
      await connection.status;
    }
    cleanup(live);
    await listener.close();
  }
});
