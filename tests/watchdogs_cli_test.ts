/**
 * sarko, finaud and node_change_state as real processes, each with exactly its permission flags
 * and an oar.conf: exit codes, the advisory lock between overlapping runs, node check and
 * healing scripts, and the ssh signaller end to end through a stand-in `ssh` that runs the
 * remote command locally.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { freePort } from "./support/ports.ts";
import { runEntry, waitFor } from "./support/proc.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { Config } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { jobEvents } from "../lib/job/events.ts";
import { fragState } from "../lib/job/frag.ts";
import { getJob } from "../lib/job/jobs.ts";
import { makeLauncher } from "../lib/launch/launcher.ts";
import { launcherSignaller, oarexecPidFile } from "../lib/launch/oarexec_signal.ts";
import { getResource } from "../lib/resource/resources.ts";

async function tempDir(db: TestDb): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "oar-watchdogs-" });
  db.addTempDir(dir);
  return dir;
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

/** A config whose notifications go to a port nobody listens on (they are best effort). */
async function conf(db: TestDb, extra: Record<string, string | number> = {}) {
  return await writeConfigFile(db, {
    APPENDICE_SERVER_PORT: await freePort(),
    LOG_LEVEL: 3,
    ...extra,
  });
}

/** A stand-in ssh: `<ssh> [-p N] [-x] [-T] [-oX=Y...] <host> <words...>` runs the words here. */
async function fakeSsh(dir: string): Promise<string> {
  return await script(
    dir,
    "ssh",
    `echo "$@" >> ${dir}/ssh.log
while [ $# -gt 0 ]; do
  case "$1" in -p) shift 2 ;; -x|-T|-o?*) shift ;; *) break ;; esac
done
shift
exec /bin/sh -c "$*"`,
  );
}

Deno.test("sarko process: a Running job past its walltime, exit 1, one WALLTIME, frag", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const [r] = await insertResources(db.sql, ["node1"], 1);
  const { jobId } = await insertJob(db.sql, {
    state: "Running",
    walltime: 60,
    startTime: now - 100,
    resources: [r],
    name: `'"; $(touch /tmp/pwned)`,
  });
  const res = await runEntry("sarko", await conf(db));
  assertEquals(res.code, 1, res.stderr);
  assertEquals((await jobEvents(db.sql, jobId, "WALLTIME")).length, 1);
  assertEquals(await fragState(db.sql, jobId), "LEON");
});

Deno.test("sarko processes: two overlapping runs write one WALLTIME event", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const jobs: number[] = [];
  const rs = await insertResources(db.sql, ["node1", "node2"], 10);
  for (const r of rs) {
    jobs.push(
      (await insertJob(db.sql, {
        state: "Running",
        walltime: 60,
        startTime: now - 100,
        resources: [r],
      })).jobId,
    );
  }
  const c = await conf(db);
  const codes = (await Promise.all([runEntry("sarko", c), runEntry("sarko", c)]))
    .map((r) => r.code).sort();
  // One run did the work (1); the other either found the lock taken or nothing left (0).
  assertEquals(codes, [0, 1]);
  const [{ n }] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM event_logs WHERE type = 'WALLTIME'`;
  assertEquals(n, jobs.length);
  const frags = await db.sql`SELECT 1 FROM frag_jobs`;
  assertEquals(frags.length, jobs.length);
});

Deno.test("sarko process: a bad configuration is exit 1 with a message", async () => {
  await using db = await createTestDb();
  const res = await runEntry("sarko", await conf(db, { DEAD_SWITCH_TIME: "soon" }));
  assertEquals(res.code, 1);
  assertStringIncludes(res.stderr, "DEAD_SWITCH_TIME");
});

Deno.test("sarko process: checkpoint through OPENSSH_CMD reaches oarexec's pid", async () => {
  await using db = await createTestDb();
  const dir = await tempDir(db);
  const ssh = await fakeSsh(dir);
  const now = await dbNow(db.sql);
  const [r] = await insertResources(db.sql, ["node1"], 1);
  const { jobId } = await insertJob(db.sql, {
    state: "Running",
    walltime: 3600,
    startTime: now - 3590,
    resources: [r],
  });
  await db.sql`UPDATE jobs SET checkpoint = 60 WHERE job_id = ${jobId}`;
  // oarexec: a process that records USR2 (and CONT, which comes first).
  const oarexec = new Deno.Command("sh", {
    args: ["-c", `trap 'echo USR2 >> ${dir}/sigs' USR2; while :; do sleep 0.05; done`],
  }).spawn();
  try {
    const config = await conf(db, {
      OPENSSH_CMD: `${ssh} -p 6667`,
      OAREXEC_DIRECTORY: dir,
      TIMEOUT_SSH: 10,
    });
    await Deno.writeTextFile(
      oarexecPidFile(new Config({ OAREXEC_DIRECTORY: dir }), jobId),
      `${oarexec.pid}\n`,
    );
    const res = await runEntry("sarko", config);
    assertEquals(res.code, 0, res.stderr);
    await waitFor("USR2", () => Deno.readTextFile(`${dir}/sigs`).catch(() => false));
    assertEquals((await jobEvents(db.sql, jobId, "CHECKPOINT_SUCCESSFULL")).length, 1);
    assertStringIncludes(await Deno.readTextFile(`${dir}/ssh.log`), "node1 sh -c");
  } finally {
    oarexec.kill("SIGKILL");
    await oarexec.status;
  }
});

Deno.test("finaud process: the generic check reports one bad host, exit 1, Suspected", async () => {
  await using db = await createTestDb();
  const dir = await tempDir(db);
  const check = await script(dir, "check", `echo node2`);
  await insertResources(db.sql, ["node1", "node2", "node3"], 2);
  const res = await runEntry("finaud", await conf(db, { PINGCHECKER_GENERIC_COMMAND: check }));
  assertEquals(res.code, 1, res.stderr);
  const rows = await db.sql<{ network_address: string; next_state: string }[]>`
    SELECT DISTINCT network_address, next_state FROM resources ORDER BY network_address`;
  assertEquals(rows.map((r) => [r.network_address, r.next_state]), [
    ["node1", "UnChanged"],
    ["node2", "Suspected"],
    ["node3", "UnChanged"],
  ]);
  // node_change_state applies it: exit 1 (the scheduler must run).
  const ncs = await runEntry("node_change_state", await conf(db));
  assertEquals(ncs.code, 1, ncs.stderr);
  const rid = (await db.sql<{ resource_id: number }[]>`
    SELECT resource_id FROM resources WHERE network_address = 'node2' LIMIT 1`)[0].resource_id;
  const r = await getResource(db.sql, Number(rid));
  assertEquals([r?.state, r?.finaud_decision, r?.next_state], ["Suspected", "YES", "UnChanged"]);
});

Deno.test("finaud process: local launcher, no check configured, exit 0", async () => {
  await using db = await createTestDb();
  await insertResources(db.sql, ["node1", "node2"], 1);
  const res = await runEntry("finaud", await conf(db, { OAREXEC_LAUNCHER: "local" }));
  assertEquals(res.code, 0, res.stderr);
});

Deno.test("finaud process: built-in check over TCP to OPENSSH_CMD's port", async () => {
  await using db = await createTestDb();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const c of listener) c.close();
  })();
  try {
    await insertResources(db.sql, ["127.0.0.1", "127.0.0.2"], 1);
    const res = await runEntry(
      "finaud",
      await conf(db, { OPENSSH_CMD: `/usr/bin/ssh -p ${port}`, TIMEOUT_SSH: 5 }),
    );
    assertEquals(res.code, 1, res.stderr);
    const rows = await db.sql<{ network_address: string; next_state: string }[]>`
      SELECT network_address, next_state FROM resources ORDER BY network_address`;
    assertEquals(rows.map((r) => r.next_state), ["UnChanged", "Suspected"]);
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("node_change_state process: end state, Dead node under a job, healing", async () => {
  await using db = await createTestDb();
  const dir = await tempDir(db);
  const heal = await script(dir, "heal", `cat > ${dir}/healed`);
  const rs = await insertResources(db.sql, ["node1", "node2"], 1);
  const { jobId: ended } = await insertJob(db.sql, { state: "Finishing" });
  await db.sql`
    INSERT INTO event_logs (type, job_id, date, description, to_check)
    VALUES ('SWITCH_INTO_TERMINATE_STATE', ${ended}, 0, 'done', 'YES')`;
  const c = await conf(db, { SUSPECTED_HEALING_EXEC_FILE: heal });
  let res = await runEntry("node_change_state", c);
  assertEquals(res.code, 0, res.stderr);
  assertEquals((await getJob(db.sql, ended))?.state, "Terminated");

  const { jobId: running } = await insertJob(db.sql, { state: "Running", resources: rs });
  await db.sql`UPDATE resources SET next_state = 'Dead' WHERE resource_id = ${rs[0]}`;
  await db.sql`UPDATE resources SET next_state = 'Suspected' WHERE resource_id = ${rs[1]}`;
  res = await runEntry("node_change_state", c);
  assertEquals(res.code, 2, res.stderr);
  assertEquals(await fragState(db.sql, running), "LEON");
  assertEquals(await Deno.readTextFile(`${dir}/healed`), `${rs[1]} node2\n`);
});

/** A stand-in oarexec recording the signals it gets; returns it and a reader of its log. */
async function fakeOarexec(dir: string, config: Config, jobId: number) {
  const proc = new Deno.Command("sh", {
    args: [
      "-c",
      `for s in TSTP CONT USR2; do trap "echo $s >> ${dir}/sigs" $s; done
echo ready > ${dir}/ready
while :; do sleep 0.05; done`,
    ],
  }).spawn();
  await waitFor("oarexec ready", () => Deno.readTextFile(`${dir}/ready`).catch(() => false));
  await Deno.writeTextFile(oarexecPidFile(config, jobId), `${proc.pid}\n`);
  const sigs = async () => (await Deno.readTextFile(`${dir}/sigs`).catch(() => "")).trim();
  return { proc, sigs };
}

for (const launcher of ["ssh", "local"]) {
  Deno.test(`signaller over the ${launcher} launcher: suspend is TSTP, resume CONT, errors are texts`, async () => {
    await using db = await createTestDb();
    const dir = await tempDir(db);
    const config = new Config({
      OAREXEC_LAUNCHER: launcher,
      OPENSSH_CMD: `${await fakeSsh(dir)} -p 6667`,
      OAREXEC_DIRECTORY: dir,
      TIMEOUT_SSH: 10,
    });
    const signaller = launcherSignaller(makeLauncher(config));
    const { proc, sigs } = await fakeOarexec(dir, config, 7);
    try {
      assertEquals(await signaller.signal("node1", 7, "STOP"), null);
      await waitFor("TSTP", async () => (await sigs()).split("\n").includes("TSTP"));
      assertEquals(await signaller.signal("node1", 7, "CONT"), null);
      assertEquals(await signaller.signal("node1", 7, "USR2"), null);
      // Pending signals are not queued: a burst arrives in signal-number order.
      await waitFor("USR2", async () => (await sigs()).split("\n").includes("USR2"));
      // (CONT is sent before each signal too; pending signals' delivery order is the kernel's.)
      assertOk((await sigs()).split("\n").includes("CONT"));
      // No pid file for job 8: an error text, not an exception.
      assertOk((await signaller.signal("node1", 8, "USR2")) !== null);
      if (launcher === "ssh") {
        // A host name that ssh would read as an option is refused.
        assertOk((await signaller.signal("-oProxyCommand=x", 7, "TERM")) !== null);
        assertOk(!(await Deno.readTextFile(`${dir}/ssh.log`)).includes("ProxyCommand"));
      }
    } finally {
      proc.kill("SIGKILL");
      await proc.status;
    }
  });
}

Deno.test("signaller: an unresponsive node is a timeout error (#153)", async () => {
  await using db = await createTestDb();
  const dir = await tempDir(db);
  const ssh = await script(dir, "ssh", "exec sleep 30");
  const signaller = launcherSignaller(
    makeLauncher(new Config({ OPENSSH_CMD: ssh, OAREXEC_DIRECTORY: dir, TIMEOUT_SSH: 1 })),
  );
  const t = Date.now();
  const err = await signaller.signal("node1", 7, "USR2");
  assertOk(err?.includes("timed out"), String(err));
  assertOk(Date.now() - t < 5000);
});
