/**
 * The local launcher's resident oarexec agent (modules/oarexec/agent.ts) as real processes: one
 * agent runs several jobs, each reports on its own, signals reach only their job, the agent
 * leaves once idle, a stale socket does not stop it, garbage does not stop it, and a launcher
 * that cannot start it falls back to a per-job oarexec.
 */
import { join } from "node:path";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import {
  type ExecRig,
  execRig,
  killSessions,
  oarexecPid,
  pidsWithMarker,
  ReportListener,
  testDescriptor,
} from "./support/exec_fixtures.ts";
import { waitFor } from "./support/proc.ts";
import { LocalLauncher } from "../lib/launch/local.ts";
import { agentJobs } from "../lib/launch/agent_client.ts";
import { agentSocketPath } from "../lib/exec/agent_path.ts";
import { isSpareDirectory } from "../modules/oarexec/recycled_files.ts";
import { sweepStalePidFiles } from "../modules/oarexec/agent.ts";
import { encodeOarexecDescriptor } from "../lib/protocol/mod.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** The agent processes serving this rig (their flags name its socket). */
function agents(rig: ExecRig): number[] {
  return pidsWithMarker(`unix:${agentSocketPath(rig.config)}`)
    .filter((pid) => {
      try {
        return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("--serve");
      } catch {
        return false;
      }
    });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function withRig(
  extra: Record<string, string | number>,
  fn: (rig: ExecRig, reports: ReportListener, launcher: LocalLauncher) => Promise<void>,
) {
  await using db = await createTestDb({ schema: false });
  const rig = await execRig(db, { OAREXEC_AGENT_IDLE_TIME: 1, ...extra });
  const reports = new ReportListener(rig.port);
  try {
    await fn(rig, reports, new LocalLauncher(rig.config, rig.log));
  } finally {
    killSessions([...agents(rig), ...pidsWithMarker(rig.work)]);
    await reports.close();
  }
}

Deno.test(
  "agent: one resident oarexec runs several jobs, each with its own report and signals",
  opts,
  async () => {
    await withRig({}, async (rig, reports, launcher) => {
      const long = testDescriptor(rig, { command: `sleep 30 # ${rig.work}` });
      const short = testDescriptor(rig, { command: "echo hello" });
      const [a, b] = await Promise.all([
        launcher.launch("n1", encodeOarexecDescriptor(long)),
        launcher.launch("n1", encodeOarexecDescriptor(short)),
      ]);
      assertOk(a.rendezvous && b.rendezvous, `${a.output}\n${b.output}`);
      assertEquals(
        await reports.line(`OAREXEC_${short.job_id}_`),
        `OAREXEC_${short.job_id}_0_0_chal`,
      );
      assertEquals(
        (await Deno.readTextFile(join(rig.work, `OAR.${short.job_id}.stdout`))).trim(),
        "hello",
      );
      // One agent, and the long job's pid file names it (liveness checks read that file).
      const [agent, ...others] = agents(rig);
      assertEquals(others, []);
      assertEquals(await oarexecPid(rig, long.job_id), agent);
      assertEquals(await agentJobs(rig.config, 5000), [long.job_id]);

      // A kill reaches the long job only, through the socket; the agent lives on.
      assertEquals(await launcher.signalOarexec("n1", long.job_id, "TERM", { wait: true }), null);
      assertOk(
        (await reports.line(`OAREXEC_${long.job_id}_`)).startsWith(`OAREXEC_${long.job_id}_3_`),
      );
      assertStringIncludes(
        await Deno.readTextFile(join(rig.work, `OAR.${long.job_id}.stderr`)),
        `Job ${long.job_id} KILLED`,
      );
      // A job it does not hold is an error, not a stray signal.
      assertStringIncludes(
        String(await launcher.signalOarexec("n1", 999_999, "TERM", { wait: true })),
        "not running",
      );
      // A SIGTERM at the agent's pid (an old pid-file script) does not end it.
      Deno.kill(agent, "SIGTERM");
      const third = testDescriptor(rig, { command: "true" });
      assertOk((await launcher.launch("n1", encodeOarexecDescriptor(third))).rendezvous);
      await reports.line(`OAREXEC_${third.job_id}_0_`);
      assertEquals(agents(rig), [agent]);

      // Idle: it leaves, and takes its socket with it.
      await waitFor("the idle agent leaves", () => agents(rig).length === 0, 15_000);
      assertOk(!exists(agentSocketPath(rig.config)));
    });
  },
);

Deno.test(
  "agent: a job's files are the next job's, rewritten whole, and nothing is left behind",
  opts,
  async () => {
    await withRig({}, async (rig, reports, launcher) => {
      const show = 'cat "$OAR_NODEFILE"; stat -c %i "$OAR_NODEFILE"';
      const run = async (host: string) => {
        const d = testDescriptor(rig, {
          command: show,
          resources: [{ resource_id: 1, type: "default", network_address: host }],
        });
        assertOk((await launcher.launch("n1", encodeOarexecDescriptor(d))).rendezvous);
        await reports.line(`OAREXEC_${d.job_id}_0_`);
        const [nodes, inode] = (await Deno.readTextFile(join(rig.work, `OAR.${d.job_id}.stdout`)))
          .trim().split("\n");
        return { nodes, inode };
      };
      const first = await run("first-host");
      const second = await run("second-host-with-a-longer-name");
      const third = await run("h3");
      assertEquals(
        [first.nodes, second.nodes, third.nodes],
        ["first-host", "second-host-with-a-longer-name", "h3"],
      );
      // The same file went from job to job (created once), with only its job's content.
      assertOk(
        second.inode === first.inode || third.inode === first.inode ||
          third.inode === second.inode,
        `inodes ${first.inode} ${second.inode} ${third.inode}`,
      );
      // Between jobs only the agent's spares remain; once it leaves, nothing.
      const socket = agentSocketPath(rig.config);
      const visible = () =>
        [...Deno.readDirSync(rig.tmp)].map((e) => e.name).filter((n) =>
          join(rig.tmp, n) !== socket
        );
      // The last job's pid file goes once its report is acknowledged, just after the server
      // got it.
      await waitFor(
        "only the spares between jobs",
        () => visible().filter((n) => !isSpareDirectory(n)).length === 0,
      );
      await waitFor("the idle agent leaves", () => agents(rig).length === 0, 15_000);
      assertEquals(visible(), []);
    });
  },
);

Deno.test("agent: a stale socket is replaced and garbage gets an error", opts, async () => {
  await withRig({}, async (rig, reports, launcher) => {
    await Deno.mkdir(rig.tmp, { recursive: true });
    // A socket file nobody listens on, as a killed agent leaves it.
    const made = await new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])",
        agentSocketPath(rig.config),
      ],
    }).output();
    assertOk(made.success && exists(agentSocketPath(rig.config)));
    const d = testDescriptor(rig);
    const r = await launcher.launch("n1", encodeOarexecDescriptor(d));
    assertOk(r.rendezvous, r.output);
    await reports.line(`OAREXEC_${d.job_id}_0_`);

    for (const garbage of ["HELLO\n", "SIGNAL x TERM\n", "RUN\n{not json", "\u0000\u00ff\n"]) {
      const conn = await Deno.connect({ transport: "unix", path: agentSocketPath(rig.config) });
      await conn.write(new TextEncoder().encode(garbage));
      await conn.closeWrite();
      const answer = await new Response(conn.readable).text();
      assertOk(/^(ERROR |.*\nEXIT 31\n$|descriptor)/s.test(answer), JSON.stringify(answer));
    }
    const again = testDescriptor(rig);
    assertOk((await launcher.launch("n1", encodeOarexecDescriptor(again))).rendezvous);
    await reports.line(`OAREXEC_${again.job_id}_0_`);
  });
});

Deno.test("agent: when it cannot start, the launcher runs a per-job oarexec", opts, async () => {
  // A unix socket path is limited to 108 bytes: this directory makes the bind fail.
  const deep = `/tmp/${"d".repeat(120)}`;
  await withRig({ OAREXEC_DIRECTORY: deep }, async (rig, reports, launcher) => {
    try {
      const d = testDescriptor(rig, { tmp_directory: deep });
      const r = await launcher.launch("n1", encodeOarexecDescriptor(d));
      assertOk(r.rendezvous, r.output);
      assertEquals(await reports.line(`OAREXEC_${d.job_id}_`), `OAREXEC_${d.job_id}_0_0_chal`);
      assertEquals(agents(rig), []);
    } finally {
      await Deno.remove(deep, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("agent: its socket is its user's only", opts, async () => {
  await withRig({}, async (rig, reports, launcher) => {
    const d = testDescriptor(rig, { command: `sleep 5 # ${rig.work}` });
    assertOk((await launcher.launch("n1", encodeOarexecDescriptor(d))).rendezvous);
    assertEquals(Deno.statSync(agentSocketPath(rig.config)).mode! & 0o777, 0o600);
    await launcher.signalOarexec("n1", d.job_id, "TERM", { wait: true });
    await reports.line(`OAREXEC_${d.job_id}_3_`);
  });
});

Deno.test("agent: pid files naming a dead process are swept, live ones and others kept", () => {
  const dir = Deno.makeTempDirSync({ prefix: "oar-stale-pid-" });
  try {
    const live = new Set([100]);
    Deno.writeTextFileSync(join(dir, "pid_of_oarexec_for_jobId_1"), "100"); // alive
    Deno.writeTextFileSync(join(dir, "pid_of_oarexec_for_jobId_2"), "200\n"); // dead
    Deno.writeTextFileSync(join(dir, "pid_of_oarexec_for_jobId_3"), ""); // being written
    Deno.writeTextFileSync(join(dir, "2"), "node1\n"); // a node file
    assertEquals(sweepStalePidFiles(dir, (p) => live.has(p)), 1);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(left, ["2", "pid_of_oarexec_for_jobId_1", "pid_of_oarexec_for_jobId_3"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
