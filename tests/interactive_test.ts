/**
 * Interactive jobs end to end, through the real oarsub on the whole server (local launcher):
 * `oarsub -I` waits on its socket for the meta-scheduler's and bipbip's notifications, then
 * runs the user's shell with the job's environment; the job ends with the shell. Ctrl-C while
 * waiting deletes the job; an oarsub that dies (waiting or running) leaves no job behind to
 * run to its walltime. `oarsub -C` opens a shell in a running job, and is refused otherwise.
 *
 * oarsub runs in a process group of its own (through setsid), so that a signal reaches it and
 * the shell it started, as a terminal's ^C would.
 */
import { assertEquals, assertMatch, assertOk, assertStringIncludes } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { TestServer } from "./support/server.ts";
import { Config } from "../lib/runtime/config.ts";
import { permissionFlags } from "../lib/permissions/mod.ts";
import type { OarexecDescriptor } from "../lib/protocol/mod.ts";
import { runInteractiveOarexec } from "../modules/oarexec/interactive.ts";
import { OarexecLog } from "../lib/exec/log.ts";
import type { Handled } from "../lib/exec/run.ts";
import { psTable } from "../lib/exec/sessions.ts";
import { freePort, REFUSED_ADDRESS } from "./support/ports.ts";
import { createTestDb } from "./support/testdb.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import {
  eventTypes,
  execRig,
  jobState,
  launchableJob,
  ReportListener,
  testDescriptor,
} from "./support/exec_fixtures.ts";
import { makeLauncher } from "../lib/launch/launcher.ts";
import { bipbip, type BipbipContext } from "../modules/bipbip/bipbip.ts";
import { setupLogging } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import type { Launcher, LaunchResult } from "../lib/launch/launcher.ts";
import { NotificationListener } from "../cli/oarsub/listener.ts";
import { startCommandServer } from "./support/command_server.ts";
import { startSshd } from "./support/sshd.ts";

const root = new URL("../", import.meta.url).pathname;

/**
 * `deno task oarsub` once oarsub's permission flags let it listen; until then the entry runs
 * with every permission (the flags are lib/permissions/mod.ts's business, not this test's).
 */
const VIA_TASK = (() => {
  const flags = permissionFlags("oarsub", new Config());
  const listens = flags.some((f) =>
    f === "--allow-net" || /^--allow-net=(.*,)?0\.0\.0\.0(,|$)/.test(f)
  );
  const runsShell = flags.some((f) => f === "--allow-run" || /^--allow-run=(.*,)?sh(,|$)/.test(f));
  return listens && runsShell;
})();

interface Oarsub {
  child: Deno.ChildProcess;
  /** Everything written so far. */
  out: () => string;
  err: () => string;
  /** Exit code once it ended, with all its output. */
  done: Promise<{ code: number; stdout: string; stderr: string }>;
  /** Signals oarsub's whole group (oarsub, and the shell it runs). */
  signalGroup: (sig: Deno.Signal) => void;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
}

function oarsub(server: TestServer, args: string[]): Oarsub {
  const cmd = VIA_TASK
    ? [Deno.execPath(), "task", "--quiet", "oarsub", ...args]
    : [Deno.execPath(), "run", "--quiet", "--allow-all", `${root}cli/oarsub/main.ts`, ...args];
  const child = new Deno.Command("setsid", {
    args: cmd,
    cwd: root,
    ...server.env(),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const d = new TextDecoder();
  const drain = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const c of s) add(d.decode(c, { stream: true }));
  };
  const drained = Promise.all([
    drain(child.stdout, (t) => (out += t)),
    drain(child.stderr, (t) => (err += t)),
  ]);
  const done = (async () => {
    const status = await child.status;
    await drained;
    return { code: status.code, stdout: out, stderr: err };
  })();
  return {
    child,
    out: () => out,
    err: () => err,
    done,
    signalGroup: (sig) => {
      try {
        Deno.kill(-child.pid, sig);
      } catch { /* group gone */ }
    },
    stdin: child.stdin.getWriter(),
  };
}

async function write(o: Oarsub, text: string): Promise<void> {
  await o.stdin.write(new TextEncoder().encode(text));
}

/** Runs oarsub with `input` as its whole stdin; its result. */
async function oarsubWith(server: TestServer, args: string[], input: string) {
  const o = oarsub(server, args);
  await write(o, input);
  await o.stdin.close();
  return await o.done;
}

/** Processes of oarsub's group still alive (none once the session is over). */
async function groupMembers(pgid: number): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-g", String(pgid)], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
}

function jobIdOf(stdout: string): number {
  const m = /OAR_JOB_ID=(\d+)/.exec(stdout);
  assertOk(m, `no job id in: ${stdout}`);
  return Number(m![1]);
}

async function waitState(server: TestServer, id: number, state: string): Promise<void> {
  await waitFor(`job ${id} ${state}`, async () => (await server.state(id)) === state, 60_000)
    .catch((e) => {
      throw new Error(`${e.message}\n${server.log}`);
    });
}

Deno.test({
  name: "oarsub -I and -C on the whole server: shell, environment, end, refusals, lost oarsub",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await using server = await TestServer.create();
    await server.start({ hosts: 2, cores: 2 });
    const started: Oarsub[] = [];
    try {
      await t.step("-I runs the shell in the job; the job ends Terminated with it", async () => {
        const r = await oarsubWith(
          server,
          ["-I", "-l", "core=1"],
          "echo $OAR_JOB_ID; cat $OAR_NODEFILE; exit 3\n",
        );
        const id = jobIdOf(r.stdout);
        assertEquals(r.code, 3, `${r.stdout}\n${r.stderr}\n${server.log}`);
        // The job id from its environment, then its node file.
        const lines = r.stdout.split("\n");
        assertOk(lines.includes(String(id)), r.stdout);
        assertOk(lines.some((l) => /^node\d+$/.test(l)), r.stdout);
        assertStringIncludes(r.stderr, "Interactive mode: waiting...");
        assertEquals(await server.finalState(id), "Terminated");
        const full = await server.task(["oarstat", "-f", "-j", String(id)]);
        assertStringIncludes(full.stdout, "Terminated");
        assertMatch(full.stdout, /exit_code = 768\b/);
      });

      await t.step("an interactive job that can never run is refused at once", async () => {
        const tooBig = await oarsubWith(server, ["-I", "-l", "core=100"], "exit 0\n");
        assertEquals(tooBig.code, 251, tooBig.stderr);
        assertStringIncludes(tooBig.stderr, "There are not enough resources");
        assertOk(!/OAR_JOB_ID=/.test(tooBig.stdout), tooBig.stdout);
        const nothing = await oarsubWith(
          server,
          ["-I", "-l", "core=1", "-p", "host = 'no-such-host'"],
          "exit 0\n",
        );
        assertEquals(nothing.code, 251, nothing.stderr);
        assertStringIncludes(nothing.stderr, "There are not enough resources");
      });

      const work = await Deno.makeTempDir({ prefix: "oar-interactive-work-" });
      const passive = await server.submit(["-d", work, "-l", "core=1", "sleep 600"]);
      await waitState(server, passive, "Running");

      await t.step("-C into a running passive job runs commands with its environment", async () => {
        const r = await oarsubWith(
          server,
          ["-C", String(passive)],
          'echo "ID=$OAR_JOB_ID"; cat "$OAR_NODEFILE"; pwd\n',
        );
        assertEquals(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assertStringIncludes(r.stdout, `Connect to OAR job ${passive} via the node node`);
        assertStringIncludes(r.stdout, `ID=${passive}\n`);
        assertOk(r.stdout.split("\n").some((l) => /^node\d+$/.test(l)), r.stdout);
        assertOk(r.stdout.split("\n").includes(work), r.stdout);
        // The job is not ended by the connection.
        assertEquals(await server.state(passive), "Running");
      });

      await t.step("-C is refused for a job that is not running", async () => {
        const waiting = await server.submit(["-d", work, "--hold", "-l", "core=1", "true"]);
        const r = await oarsubWith(server, ["-C", String(waiting)], "echo should-not-run\n");
        assertEquals(r.code, 20, r.stderr);
        assertStringIncludes(r.stderr, `Job ${waiting} is not running, current state is Hold.`);
        assertOk(!r.stdout.includes("should-not-run"), r.stdout);
        const none = await oarsubWith(server, ["-C", "999999"], "");
        assertEquals(none.code, 20, none.stderr);
        await server.task(["oardel", String(waiting)]);
      });

      await t.step("Ctrl-C while waiting deletes the job", async () => {
        // 3 cores are free: a job asking for 4 waits for the passive one.
        const o = oarsub(server, ["-I", "-l", "core=4"]);
        started.push(o);
        await waitFor("a start prediction", () => o.err().includes("Start prediction:"), 60_000);
        const id = jobIdOf(o.out());
        assertEquals(await server.state(id), "Waiting");
        o.signalGroup("SIGINT");
        const r = await o.done;
        assertEquals(r.code, 1, r.stderr);
        assertStringIncludes(r.stdout, "Caught Interrupt (^C), cancelling job(s)...");
        assertEquals(await server.finalState(id), "Error");
      });

      await t.step("an oarsub killed while waiting leaves no Waiting job", async () => {
        const o = oarsub(server, ["-I", "-l", "core=4"]);
        started.push(o);
        await waitFor("a start prediction", () => o.err().includes("Start prediction:"), 60_000);
        const id = jobIdOf(o.out());
        o.signalGroup("SIGKILL");
        await o.done;
        // The next scheduling round cannot tell it its prediction: the job is deleted.
        await server.submit(["-d", work, "-l", "core=1", "true"]);
        assertEquals(await server.finalState(id), "Error");
      });

      await t.step("a running interactive job whose oarsub dies is killed", async () => {
        const o = oarsub(server, ["-I", "-l", "core=1"]);
        started.push(o);
        await write(o, 'echo "ready $OAR_JOB_ID"\n');
        await waitFor("the shell", () => /^ready \d+$/m.test(o.out()), 60_000);
        const id = jobIdOf(o.out());
        assertEquals(await server.state(id), "Running");
        // oarsub alone dies (with `deno task`, its launchers too); its shell still has its
        // stdin open.
        for (const pid of await groupMembers(o.child.pid)) {
          const argv0 = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0];
          if (argv0 === Deno.execPath()) Deno.kill(Number(pid), "SIGKILL");
        }
        await o.done;
        assertEquals(await server.finalState(id), "Error");
        await waitFor("the shell to be gone", async () => {
          const left = await groupMembers(o.child.pid);
          return left.length === 0 ? true : undefined;
        }, 20_000);
      });

      await server.task(["oardel", String(passive)]);
      assertEquals(await server.finalState(passive), "Error");
      await Deno.remove(work, { recursive: true });
    } finally {
      for (const o of started) {
        o.signalGroup("SIGKILL");
        await o.stdin.close().catch(() => {});
        await o.done;
      }
    }
    assertEquals(await server.stop(), 0, server.log);
  },
});

// ---------------------------------------------------------------------------------------------
// The INTERACTIVE oarexec in-process, with real sessions (sh processes) and a real report port.

interface OarexecRun {
  code: Promise<number>;
  tmp: string;
  file: string;
  kill: () => void;
  reports: ReportListener;
  jobId: number;
}

async function startInteractiveOarexec(
  over: Partial<OarexecDescriptor> = {},
  timing: { sessionStartTimeoutMs?: number } = {},
): Promise<OarexecRun> {
  const dir = await Deno.makeTempDir({ prefix: "oar-int-exec-" });
  const tmp = `${dir}/oarexec`;
  const reports = new ReportListener(await freePort());
  const d = testDescriptor({ work: dir, tmp, port: reports.port }, {
    stdout_file: "",
    stderr_file: "",
    name: null,
    command: "",
    mode: "INTERACTIVE",
    detach_oarexec: 0,
    ...over,
  });
  const jobId = d.job_id;
  let handlers: Record<Handled, () => void> | null = null;
  let met: () => void = () => {};
  const rendezvous = new Promise<void>((r) => (met = r));
  const code = runInteractiveOarexec(d, {
    // The tests' jobs are root's: allowed here, as JOB_SYSTEM_USERS_ALLOWED=root would.
    refuseAccount: () => null,
    log: new OarexecLog(jobId, () => {}),
    rendezvous: () => {
      met();
      return Promise.resolve();
    },
    detach: () => {},
    signals: (h) => {
      handlers = h;
      return () => {};
    },
    report: { initialDelayMs: 50, maxTotalMs: 10_000 },
    pollMs: 50,
    ...timing,
  }).finally(async () => {
    await reports.close();
    await Deno.remove(dir, { recursive: true });
  });
  await rendezvous;
  return {
    code,
    tmp,
    file: `${tmp}/oarsub_connections_${jobId}`,
    kill: () => handlers?.SIGTERM(),
    reports,
    jobId,
  };
}

/** A session as the wrapper makes it: `sh` (the anchor) running `sh` that records itself. */
function session(file: string, kind: "START" | "CONNECT", body: string): Deno.ChildProcess {
  const inner = `printf '${kind} %s %s\\n' "$PPID" "$$" >> '${file}'; ${body}`;
  return new Deno.Command("sh", {
    args: ["-c", `sh -c "$1"; echo anchor-done`, "sh", inner],
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

/** The promise's value, or a failure once `ms` passed (a job that never ends fails the test). */
async function within<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function alivePid(pid: number): boolean {
  return psTable()?.has(pid) ?? false;
}

Deno.test("INTERACTIVE oarexec: the -I shell's exit ends the job (34, its status reported)", async () => {
  const run = await startInteractiveOarexec();
  const s = session(
    run.file,
    "START",
    `sleep 0.3; printf 'END %s 5\\n' "$$" >> '${run.file}'; exit 5`,
  );
  assertEquals(await within(run.code), 34);
  assertEquals(
    run.reports.lines.find((l) => l.startsWith("OAREXEC_")),
    `OAREXEC_${run.jobId}_34_1280_chal`,
  );
  await s.output();
});

Deno.test("INTERACTIVE oarexec: oarsub gone ⇒ the job is killed with its shell (3)", async () => {
  const run = await startInteractiveOarexec();
  const s = session(run.file, "START", "sleep 600");
  const wrapper = await waitFor("the session", async () => {
    const text = await Deno.readTextFile(run.file).catch(() => "");
    return /^START \d+ (\d+)$/m.exec(text)?.[1];
  }, 10_000);
  // The anchor (oarsub's stand-in) dies; its shell lives on, an orphan.
  s.kill("SIGKILL");
  await s.status;
  assertEquals(await within(run.code), 3);
  assertOk(
    run.reports.lines.includes(`OAREXEC_${run.jobId}_3_N_chal`),
    run.reports.lines.join("\n"),
  );
  assertOk(!alivePid(Number(wrapper)), "the orphaned shell was left running");
});

Deno.test("INTERACTIVE oarexec: no session begins ⇒ killed (3)", async () => {
  const run = await startInteractiveOarexec({}, { sessionStartTimeoutMs: 300 });
  assertEquals(await within(run.code), 3);
});

Deno.test("INTERACTIVE oarexec: a reservation waits for leon; TERM ends its -C sessions too", async () => {
  const run = await startInteractiveOarexec({ reservation: "Scheduled" }, {
    sessionStartTimeoutMs: 100,
  });
  const s = session(run.file, "CONNECT", "sleep 600");
  const wrapper = await waitFor("the connection", async () => {
    const text = await Deno.readTextFile(run.file).catch(() => "");
    return /^CONNECT \d+ (\d+)$/m.exec(text)?.[1];
  }, 10_000);
  // Well past the -I start timeout: a reservation has no -I session to wait for.
  await new Promise((r) => setTimeout(r, 400));
  assertOk(alivePid(Number(wrapper)));
  run.kill();
  assertEquals(await within(run.code), 3);
  assertOk(!alivePid(Number(wrapper)), "the -C session outlived the job");
  const out = new TextDecoder().decode((await s.output()).stdout);
  assertEquals(out, "anchor-done\n");
});

// ---------------------------------------------------------------------------------------------
// bipbip's words to the waiting oarsub (docs/modules.md §4.3), heard on a real oarsub socket; a
// recording launcher stands in for oarexec.

class StubLauncher implements Launcher {
  readonly kind = "local" as const;
  launches = 0;
  constructor(readonly result: LaunchResult) {}
  launch(): Promise<LaunchResult> {
    this.launches++;
    return Promise.resolve(this.result);
  }
  signalOarexec(): Promise<string | null> {
    return Promise.resolve(null);
  }
  unreachable(): Promise<string[]> {
    return Promise.resolve([]);
  }
}

async function interactiveLaunch(
  conf: Record<string, string | number>,
  result: LaunchResult,
  listen = true,
) {
  const db = await createTestDb();
  const config = new Config({ ...Object.fromEntries(db.config.entries()), LOG_LEVEL: 1, ...conf });
  const notifier = new RecordingNotifier();
  const launcher = new StubLauncher(result);
  const ctx: BipbipContext = {
    sql: db.sql,
    config,
    log: setupLogging("bipbip-interactive-test", config),
    notifier,
    launcher,
  };
  const resources = await insertResources(db.sql, ["localhost0"], 1);
  const { jobId } = await insertJob(db.sql, { state: "toLaunch", resources });
  const listener = NotificationListener.open("127.0.0.1");
  const heard: string[] = [];
  const reading = (async () => {
    for await (const l of listener.lines()) heard.push(l);
  })();
  // Without a listener, the address names a port nobody listens on.
  if (!listen) listener.close();
  await db.sql`UPDATE jobs SET job_type = 'INTERACTIVE', command = '',
    info_type = ${listen ? listener.infoType : REFUSED_ADDRESS} WHERE job_id = ${jobId}`;
  return {
    db,
    ctx,
    notifier,
    launcher,
    jobId,
    heard,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await reading;
      await db.drop();
    },
  };
}

const RENDEZVOUS: LaunchResult = { rendezvous: true, exitCode: null, output: "" };

Deno.test("bipbip, interactive job: Starting..., then GOOD JOB once oarexec is there", async () => {
  await using r = await interactiveLaunch({}, RENDEZVOUS);
  assertEquals(await bipbip(r.ctx, [String(r.jobId)]), 0);
  await waitFor("GOOD JOB", () => r.heard.includes("GOOD JOB"), 5000);
  assertEquals(r.heard, ["Starting...", "GOOD JOB"]);
  assertEquals(await jobState(r.db.sql, r.jobId), "Running");
  assertEquals(r.launcher.launches, 1);
});

Deno.test("bipbip, interactive job: GOOD JOB undeliverable ⇒ fragged, Qdel (docs/differences.md §8)", async () => {
  await using r = await interactiveLaunch({}, RENDEZVOUS, false);
  assertEquals(await bipbip(r.ctx, [String(r.jobId)]), 0);
  assertEquals(await jobState(r.db.sql, r.jobId), "Running");
  const frags = await r.db.sql`SELECT frag_state FROM frag_jobs WHERE frag_id_job = ${r.jobId}`;
  assertEquals(frags.map((f) => f.frag_state), ["LEON"]);
  assertOk(r.notifier.almightyCommands.includes("Qdel"));
  assertOk((await eventTypes(r.db.sql, r.jobId)).includes("LOST_SESSION"));
});

Deno.test("bipbip_toLaunch_server_prologue_return_code_interactive: exit 2, oarsub told", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oar-int-prologue-" });
  try {
    await Deno.writeTextFile(`${dir}/p`, "#!/bin/sh\nexit 1\n");
    await Deno.chmod(`${dir}/p`, 0o755);
    await using r = await interactiveLaunch({ SERVER_PROLOGUE_EXEC_FILE: `${dir}/p` }, RENDEZVOUS);
    assertEquals(await bipbip(r.ctx, [String(r.jobId)]), 2);
    assertEquals(r.launcher.launches, 0);
    await waitFor("the error", () => r.heard.length === 2, 5000);
    assertEquals(r.heard, ["Starting...", "ERROR: SERVER PROLOGUE returned a bad value"]);
    assertEquals(await eventTypes(r.db.sql, r.jobId), ["SERVER_PROLOGUE_EXIT_CODE_ERROR"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bipbip, interactive job: no rendezvous ⇒ oarsub told, the job is ended (error 50)", async () => {
  await using r = await interactiveLaunch({}, { rendezvous: false, exitCode: null, output: "" });
  assertEquals(await bipbip(r.ctx, [String(r.jobId)]), 0);
  await waitFor("the error", () => r.heard.length === 2, 5000);
  assertEquals(r.heard, ["Starting...", "ERROR: an error occured on the first job node"]);
  // check_end_of_job with error 50: NodeChangeState takes it to Error.
  assertEquals(await jobState(r.db.sql, r.jobId), "Finishing");
  assertOk((await eventTypes(r.db.sql, r.jobId)).includes("LAUNCHING_OAREXEC_TIMEOUT"));
});

// ---------------------------------------------------------------------------------------------
// The ssh launcher: oarexec started through a real sshd on 127.0.0.1, and the job's shell
// reached the same way (OPENSSH_CMD), as on a real cluster.

/**
 * The shell part of `oarsub -I` (connectJob, kind START) in a child process of its own, with
 * `input` on its stdin, as oarsub runs it once GOOD JOB came (it asks the command server of
 * `confPath` how to reach the job).
 */
function interactiveSession(confPath: string, jobId: number) {
  const code = `
    import { connectJob } from "${root}cli/oarsub/interactive.ts";
    Deno.exit(await connectJob(${jobId}, "START"));
  `;
  return new Deno.Command("setsid", {
    args: [Deno.execPath(), "eval", code],
    env: { OARCONFFILE: confPath, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "ssh launcher: an interactive job's shell through sshd; its end and its lost connection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using db = await createTestDb();
    const dir = await Deno.makeTempDir({ prefix: "oar-int-sshd-" });
    db.addTempDir(dir);
    const sshd = await startSshd(dir);
    const nodeConf = `${dir}/node-oar.conf`;
    const rig = await execRig(db, {
      OAREXEC_LAUNCHER: "ssh",
      OPENSSH_CMD: `/usr/bin/ssh -p ${sshd.port} -i ${sshd.key} -oStrictHostKeyChecking=no ` +
        `-oUserKnownHostsFile=/dev/null -oLogLevel=ERROR`,
      OAREXEC_REMOTE_CMD: `OARCONFFILE=${nodeConf} ${Deno.execPath()} run --quiet --allow-all ` +
        `${root}modules/oarexec/main.ts`,
    });
    await Deno.copyFile(rig.confPath, nodeConf);
    await using _commands = await startCommandServer(rig.confPath);
    const reports = new ReportListener(rig.port);
    const ctx: BipbipContext = {
      sql: db.sql,
      config: rig.config,
      log: rig.log,
      notifier: rig.notifier,
      launcher: makeLauncher(rig.config, rig.log),
      hostname: () => "127.0.0.1",
    };
    const children: Deno.ChildProcess[] = [];
    try {
      const launch = async () => {
        const listener = NotificationListener.open("127.0.0.1");
        const heard: string[] = [];
        const reading = (async () => {
          for await (const l of listener.lines()) heard.push(l);
        })();
        const jobId = await launchableJob(db.sql, rig, { hosts: ["127.0.0.1"], command: "" });
        await db.sql`UPDATE jobs SET job_type = 'INTERACTIVE', info_type = ${listener.infoType}
          WHERE job_id = ${jobId}`;
        assertEquals(await bipbip(ctx, [String(jobId)]), 0);
        await waitFor("GOOD JOB", () => heard.includes("GOOD JOB"), 10_000);
        listener.close();
        await reading;
        assertEquals(await jobState(db.sql, jobId), "Running");
        return jobId;
      };

      // The shell exits: the job is over, with the shell's status.
      const first = await launch();
      const s1 = interactiveSession(rig.confPath, first);
      children.push(s1);
      const w = s1.stdin.getWriter();
      await w.write(new TextEncoder().encode('echo "on $(hostname) job $OAR_JOB_ID"; exit 6\n'));
      await w.close();
      const out1 = await s1.output();
      const text1 = new TextDecoder().decode(out1.stdout);
      assertEquals(out1.code, 6, new TextDecoder().decode(out1.stderr));
      assertStringIncludes(text1, `Connect to OAR job ${first} via the node 127.0.0.1`);
      assertStringIncludes(text1, ` job ${first}\n`);
      const line1 = await reports.line(`OAREXEC_${first}_`);
      assertOk(line1.startsWith(`OAREXEC_${first}_34_1536_`), line1);
      assertEquals(await bipbip(ctx, line1.split("_").slice(1)), 0);
      // Finishing, on its way to Terminated (NodeChangeState's part), with the shell's status.
      assertEquals(await eventTypes(db.sql, first), ["SWITCH_INTO_TERMINATE_STATE"]);
      const [{ exit_code }] = await db.sql`SELECT exit_code FROM jobs WHERE job_id = ${first}`;
      assertEquals(exit_code, 6 << 8);

      // The connection is lost (ssh killed): the job is killed, not left to its walltime.
      const second = await launch();
      const s2 = interactiveSession(rig.confPath, second);
      children.push(s2);
      const w2 = s2.stdin.getWriter();
      await w2.write(new TextEncoder().encode("echo connected\n"));
      const sessionFile = `${rig.tmp}/oarsub_connections_${second}`;
      const anchor = await waitFor("the session", async () => {
        const t = await Deno.readTextFile(sessionFile).catch(() => "");
        return /^START (\d+) \d+$/m.exec(t)?.[1];
      }, 20_000);
      // The node's end of the connection (the sshd session process) goes away.
      Deno.kill(Number(anchor), "SIGKILL");
      const line2 = await reports.line(`OAREXEC_${second}_`);
      assertOk(line2.startsWith(`OAREXEC_${second}_3_N_`), line2);
      await w2.close().catch(() => {});
      // ssh notices and ends: oarsub's session is over.
      assertOk((await within(s2.status)).code !== 0);
    } finally {
      for (const c of children) {
        try {
          Deno.kill(-c.pid, "SIGKILL");
        } catch { /* gone */ }
        await c.status.catch(() => {});
      }
      await reports.close();
      await sshd.stop();
    }
  },
});
