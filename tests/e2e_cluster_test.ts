/**
 * End to end on a cluster in a box (lib/cluster/, tests/support/cluster.ts): five hosts in
 * network namespaces, each with its own sshd, reached by the server through the ssh launcher,
 * every check made with the real commands (oarsub, oarstat, oardel, oarnodes) and the jobs'
 * output files, as a user would.
 *
 * One cluster and one server for all scenarios, run side by side to keep the wall time low;
 * each scenario pins its jobs to its own hosts with `-p`, so none can disturb another:
 *   h1, h2  a host's sshd killed while a job runs on it, then restarted;
 *   h3, h4  a 2-host job, then a besteffort job preempted (h3) and an array, a walltime kill
 *           and an oardel (h4);
 *   h5      an advance reservation.
 * Where network namespaces are unavailable (not root, no iproute2 or sshd) the test is
 * ignored, with the reason printed.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  ClusterServer,
  JobWatch,
  unavailableReason,
  withClusterServer,
} from "./support/cluster.ts";
import { waitFor } from "./support/proc.ts";

const unavailable = await unavailableReason();
if (unavailable) console.log(`e2e_cluster_test: cluster scenarios ignored: ${unavailable}`);

const FINAL = ["Terminated", "Error"];

interface Ctx {
  cs: ClusterServer;
  watch: JobWatch;
  work: string;
  /** `-p` restricting a job to these hosts (1-based indexes). */
  on(...hosts: number[]): string[];
  submit(args: string[]): Promise<number[]>;
  events(id: number): Promise<string[]>;
  eventText(id: number): Promise<string>;
  stdout(id: number): Promise<string>;
  stderr(id: number): Promise<string>;
}

function makeCtx(cs: ClusterServer, work: string): Ctx {
  const watch = new JobWatch(cs.server);
  const ctx: Ctx = {
    cs,
    watch,
    work,
    on: (...hosts) => [
      "-p",
      `network_address in (${hosts.map((h) => `'${cs.host(h).name}'`).join(",")})`,
    ],
    async submit(args) {
      const r = await cs.server.task(["oarsub", "-d", work, ...args]);
      const ids = [...r.stdout.matchAll(/OAR_JOB_ID=(\d+)/g)].map((m) => Number(m[1]));
      if (r.code !== 0 || ids.length === 0) {
        throw new Error(`oarsub ${args.join(" ")} failed (${r.code}): ${r.stdout}${r.stderr}`);
      }
      for (const id of ids) watch.track(id);
      return ids;
    },
    async events(id) {
      const r = await cs.server.task(["oarstat", "-e", "-J", "-j", String(id)]);
      const out = JSON.parse(r.stdout || "{}") as Record<string, { type: string }[]>;
      return (out[String(id)] ?? []).map((e) => e.type);
    },
    async eventText(id) {
      return (await cs.server.task(["oarstat", "-e", "-j", String(id)])).stdout;
    },
    stdout: (id) => Deno.readTextFile(`${work}/OAR.${id}.stdout`),
    stderr: (id) => Deno.readTextFile(`${work}/OAR.${id}.stderr`),
  };
  return ctx;
}

/** `ip -4 -o addr show dev eth0` in a job tells which host (namespace) it ran on. */
const WHERE = "ip -4 -o addr show dev eth0";

function ranOn(output: string, host: string): boolean {
  return output.includes(`inet ${host}/`);
}

// ---------------------------------------------------------------------------------------------
// scenarios

/** A job on two hosts: OAR_NODEFILE lists both, and the job runs on the first (its head node). */
async function twoHostJob(c: Ctx): Promise<void> {
  const [h3, h4] = [c.cs.host(3).name, c.cs.host(4).name];
  const [id] = await c.submit([
    "-l",
    "nodes=2,walltime=0:2:0",
    ...c.on(3, 4),
    `sort -u $OAR_NODEFILE; echo lines=$(wc -l < $OAR_NODEFILE); ${WHERE}`,
  ]);
  assertEquals(await c.watch.waitFor(id, FINAL), "Terminated");
  const out = await c.stdout(id);
  const hosts = out.split("\n").filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
  assertEquals(hosts, [h3, h4].sort(), out);
  // One line per core of both hosts.
  assertStringIncludes(out, `lines=${2 * c.cs.cluster.cores}`);
  assertOk(ranOn(out, [h3, h4].sort()[0]), `not run on the head node:\n${out}`);
}

/** An array of 3: three jobs, each with its index, all Terminated. */
async function arrayJob(c: Ctx): Promise<void> {
  const ids = await c.submit([
    "--array",
    "3",
    "-l",
    "core=1,walltime=0:2:0",
    ...c.on(4),
    "echo index=$OAR_ARRAY_INDEX array=$OAR_ARRAY_ID",
  ]);
  assertEquals(ids.length, 3);
  const states = await Promise.all(ids.map((id) => c.watch.waitFor(id, FINAL)));
  assertEquals(states, ["Terminated", "Terminated", "Terminated"]);
  const outs = await Promise.all(ids.map((id) => c.stdout(id)));
  const indexes = outs.map((o) => Number(/index=(\d+)/.exec(o)?.[1])).sort();
  assertEquals(indexes, [1, 2, 3], outs.join("|"));
  for (const o of outs) assertStringIncludes(o, `array=${ids[0]}`);
}

/** Over its walltime, a job is killed (sarko, leon, oarexec on the host) and ends in Error. */
async function walltimeKill(c: Ctx): Promise<void> {
  const [id] = await c.submit(["-l", "core=1,walltime=0:0:2", ...c.on(4), "sleep 300"]);
  // Sarko runs at least every 10 s; then Leon's TERM reaches oarexec on the host through ssh.
  assertEquals(await c.watch.waitFor(id, FINAL, 60_000), "Error");
  const events = await c.events(id);
  assertOk(events.includes("WALLTIME"), events.join(" "));
  assertOk(events.includes("SEND_KILL_JOB"), events.join(" "));
  assertStringIncludes(await c.stderr(id), `Job ${id} KILLED`);
}

/** oardel of a Running job: killed on its host, Error, with the deletion's events. */
async function oardel(c: Ctx): Promise<void> {
  const [id] = await c.submit(["-l", "core=1,walltime=0:5:0", ...c.on(4), `${WHERE}; sleep 300`]);
  assertEquals(await c.watch.waitFor(id, ["Running", ...FINAL]), "Running");
  const r = await c.cs.server.task(["oardel", String(id)]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assertEquals(await c.watch.waitFor(id, FINAL), "Error");
  const events = await c.events(id);
  assertOk(events.includes("FRAG_JOB_REQUEST"), events.join(" "));
  assertOk(events.includes("SEND_KILL_JOB"), events.join(" "));
  assertStringIncludes(await c.stderr(id), `Job ${id} KILLED`);
  assertOk(ranOn(await c.stdout(id), c.cs.host(4).name));
}

/** A besteffort job holding a host is killed when a normal job needs that host. */
async function besteffortPreempted(c: Ctx): Promise<void> {
  const [be] = await c.submit(["-t", "besteffort", "-l", "nodes=1", ...c.on(3), "sleep 300"]);
  assertEquals(await c.watch.waitFor(be, ["Running", ...FINAL]), "Running");
  const [normal] = await c.submit(["-l", "nodes=1,walltime=0:2:0", ...c.on(3), WHERE]);
  assertEquals(await c.watch.waitFor(normal, FINAL), "Terminated");
  assertEquals(await c.watch.waitFor(be, FINAL), "Error");
  const events = await c.events(be);
  assertOk(events.includes("BESTEFFORT_KILL"), events.join(" "));
  assertStringIncludes(await c.stderr(be), `Job ${be} KILLED`);
  assertOk(ranOn(await c.stdout(normal), c.cs.host(3).name));
}

function localDate(epochS: number): string {
  const d = new Date(epochS * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** An advance reservation waits, then starts at its date (not before, and soon after). */
async function reservation(c: Ctx): Promise<void> {
  const start = Math.floor(Date.now() / 1000) + 10;
  const [id] = await c.submit([
    "-r",
    localDate(start),
    "-l",
    "nodes=1,walltime=0:1:0",
    ...c.on(5),
    `date +%s; ${WHERE}`,
  ]);
  // Accepted and waiting for its date.
  assertEquals(await c.watch.waitFor(id, ["Waiting", "Running", ...FINAL]), "Waiting");
  assertEquals(await c.watch.waitFor(id, FINAL, 40_000), "Terminated");
  const out = await c.stdout(id);
  const ran = Number(out.split("\n")[0]);
  assertOk(ran >= start, `started at ${ran}, before its date ${start}`);
  // The scheduler looks at least every SCHEDULER_MIN_TIME_BETWEEN_2_CALLS (1 s) once due.
  assertOk(ran <= start + 8, `started at ${ran}, ${ran - start} s after its date`);
  assertOk(ranOn(out, c.cs.host(5).name), out);
  const r = await c.cs.server.task(["oarstat", "-f", "-J", "-j", String(id)]);
  const job = JSON.parse(r.stdout)[String(id)];
  assertEquals(job.reservation, "Scheduled");
}

/**
 * A host's sshd dies while a job runs there: that job carries on (its oarexec does not need
 * sshd) and ends normally; the next job sent there cannot be launched, so it ends in Error, the
 * host is Suspected and the job is resubmitted (docs/modules.md §9.1 rule 7) and runs on another
 * host. Once sshd is back and the host idle, finaud finds it answering and it is Alive again.
 * (Finaud leaves hosts with a running job alone, CHECK_NODES_WITH_RUNNING_JOB=no: while the
 * first job runs, only a launch can find out that the host's sshd is gone.)
 */
async function sshdKilled(c: Ctx): Promise<void> {
  const { cs } = c;
  const [h1, h2] = [cs.host(1).name, cs.host(2).name];
  const [a] = await c.submit(["-l", "core=1,walltime=0:2:0", ...c.on(1), `${WHERE}; sleep 12`]);
  assertEquals(await c.watch.waitFor(a, ["Running", ...FINAL]), "Running");
  await cs.killSshd(1);
  // h1 (lowest resources, 3 free cores) is the first choice for a one-core job on h1 or h2.
  const [b] = await c.submit(["-l", "core=1,walltime=0:2:0", ...c.on(1, 2), WHERE]);
  assertEquals(await c.watch.waitFor(b, FINAL), "Error");
  // node_change_state puts the job in Error, then suspects the host and resubmits the job.
  let events: string[] = [];
  await waitFor(
    `job ${b}'s resubmission`,
    async () => (events = await c.events(b)).includes("RESUBMIT_JOB_AUTOMATICALLY"),
    20_000,
  ).catch((e) => {
    throw new Error(`${e.message}: ${events.join(" ")}`);
  });
  assertOk(events.includes("PING_CHECKER_NODE_SUSPECTED"), events.join(" "));
  const text = await c.eventText(b);
  const resubmitted = Number(/=> (\d+)/.exec(text)?.[1]);
  assertOk(Number.isInteger(resubmitted), text);
  await cs.waitNodeState(1, "Suspected");
  c.watch.track(resubmitted);
  assertEquals(await c.watch.waitFor(resubmitted, FINAL), "Terminated");
  assertOk(ranOn(await c.stdout(resubmitted), h2), await c.stdout(resubmitted));
  // The job already running on h1 was not disturbed.
  assertEquals(await c.watch.waitFor(a, FINAL), "Terminated");
  assertOk(ranOn(await c.stdout(a), h1));
  assertEquals((await cs.nodeStates())[h1], "Suspected");

  await cs.startSshd(1);
  await cs.waitNodeState(1, "Alive");
  const [d] = await c.submit(["-l", "core=1,walltime=0:2:0", ...c.on(1), WHERE]);
  assertEquals(await c.watch.waitFor(d, FINAL), "Terminated");
  assertOk(ranOn(await c.stdout(d), h1));
}

// ---------------------------------------------------------------------------------------------

/**
 * Runs the scenarios side by side; fails with every scenario's error (and the server's log,
 * unless nested), after all ended.
 */
async function together(
  c: Ctx,
  scenarios: Record<string, (c: Ctx) => Promise<void>>,
  nested = false,
) {
  const names = Object.keys(scenarios);
  const results = await Promise.allSettled(names.map((n) => scenarios[n](c)));
  const failed = results.flatMap((r, i) =>
    r.status === "rejected" ? [`${names[i]}: ${(r.reason as Error)?.stack ?? r.reason}`] : []
  );
  if (failed.length) {
    const log = nested ? "" : `\n\n--- server log ---\n${c.cs.server.log}`;
    throw new Error(`${failed.join("\n\n")}${log}`);
  }
}

Deno.test({
  name: "e2e cluster: multi-host, array, walltime, oardel, besteffort, reservation, sshd loss",
  ignore: unavailable !== null,
}, async () => {
  await withClusterServer({
    hosts: 5,
    cores: 4,
    config: {
      // Short timers: launches fail fast on a dead sshd, finaud looks every 2 s.
      TIMEOUT_SSH: 5,
      FINAUD_FREQUENCY: 2,
      SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: 1,
      CHECK_NODES_WITH_RUNNING_JOB: "no",
    },
  }, async (cs) => {
    const work = await Deno.makeTempDir({ prefix: "oar-e2e-cluster-" });
    try {
      const c = makeCtx(cs, work);
      await together(c, {
        sshdKilled,
        reservation,
        // h3 and h4 whole for the 2-host job, then shared by the others.
        hosts34: async (c) => {
          await twoHostJob(c);
          await together(c, { arrayJob, walltimeKill, oardel, besteffortPreempted }, true);
        },
      });
      assertEquals(await cs.server.stop(), 0, cs.server.log);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  });
});

Deno.test({
  name: "e2e cluster: teardown leaves nothing behind, even with jobs still running",
  ignore: unavailable !== null,
}, async () => {
  const cs = await ClusterServer.create({ hosts: 2, cores: 1, config: { TIMEOUT_SSH: 5 } });
  const work = await Deno.makeTempDir({ prefix: "oar-e2e-cluster-" });
  const marker = `oar-cluster-${crypto.randomUUID()}`;
  try {
    const c = makeCtx(cs, work);
    const [id] = await c.submit(["-l", "core=1", `sleep 300; echo ${marker}`]);
    assertEquals(await c.watch.waitFor(id, ["Running", ...FINAL]), "Running");
    await waitFor("the job's shell", async () => (await pgrep(marker)).length > 0);
  } finally {
    try {
      // Disposal as after a failed test: the hosts go with the job still running, then the
      // server stops.
      await cs[Symbol.asyncDispose]();
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  }
  assertEquals(await pgrep(marker), []);
  assertEquals(await pgrep(cs.cluster.dir), []);
  assertOk(!(await exists(cs.cluster.dir)), `${cs.cluster.dir} is still there`);
});

async function pgrep(pattern: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-af", pattern], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim() !== "");
}

Deno.test({
  name: "e2e cluster: tools/cluster.ts up and down from the command line",
  ignore: unavailable !== null,
}, async () => {
  const parent = await Deno.makeTempDir({ prefix: "oar-cluster-cli-" });
  const dir = `${parent}/cluster`;
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../tools/cluster.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, out: d.decode(out.stdout) + d.decode(out.stderr) };
  };
  try {
    // --conf: the keys go into the given oar.conf, and `down` takes them out again.
    const conf = `${parent}/oar.conf`;
    const original = `LOG_LEVEL="2"\nSERVER_PORT="6666"\n`;
    await Deno.writeTextFile(conf, original);
    const up = await run(["up", "--hosts", "2", "--cores", "1", "--dir", dir, "--conf", conf]);
    assertEquals(up.code, 0, up.out);
    const info = JSON.parse(await Deno.readTextFile(`${dir}/cluster.json`));
    assertEquals(info.hosts.length, 2);
    const withKeys = await Deno.readTextFile(conf);
    assertStringIncludes(withKeys, `OAREXEC_LAUNCHER="ssh"`);
    assertStringIncludes(withKeys, `SERVER_HOSTNAME="${info.serverAddress}"`);
    assertStringIncludes(withKeys, `OAREXEC_REMOTE_CMD="OARCONFFILE=${conf} `);
    // Both hosts answer on the ssh port; a second `up` in the same place is refused.
    for (const h of info.hosts) (await Deno.connect({ hostname: h.ip, port: 6667 })).close();
    const again = await run(["up", "--hosts", "1", "--dir", dir]);
    assertEquals(again.code, 1, again.out);
    assertStringIncludes(again.out, "already holds a cluster");
    const down = await run(["down", "--dir", dir]);
    assertEquals(down.code, 0, down.out);
    assertEquals(await Deno.readTextFile(conf), original);
    assertEquals(await pgrep(dir), []);
    const netns = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
    );
    assertOk(!netns.includes(info.prefix), netns);
    // The directory was made by `up`, so `down` removed it.
    assertOk(!(await exists(dir)), `${dir} is still there`);
  } finally {
    if (await exists(dir)) await run(["down", "--dir", dir]);
    await Deno.remove(parent, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
