/**
 * Finaud in-process against a real database (every case of OAR 3's test_finaud.py, the
 * candidate rules, docs/differences.md §12) and the node checks with real commands: small shell
 * scripts standing in for the generic command, fping and nmap, and real sockets for the built-in
 * check.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { Config } from "../lib/runtime/config.ts";
import { jobEvents } from "../lib/job/events.ts";
import { runFinaud } from "../modules/finaud/finaud.ts";
import { moduleLogger } from "../lib/runtime/log.ts";
import { pingchecker, pingMethod, type PingOutcome, sshPort } from "../lib/resource/pingchecker.ts";
import { getResource } from "../lib/resource/resources.ts";

const HOSTS = ["localhost0", "localhost1", "localhost2", "localhost3", "localhost4"];

interface FinaudRun {
  code: number;
  /** The hosts handed to the check. */
  checked: string[];
}

async function finaud(
  db: TestDb,
  outcome: Partial<PingOutcome> = {},
  extra: Record<string, string | number> = {},
): Promise<FinaudRun> {
  let checked: string[] = [];
  const code = await runFinaud({
    sql: db.sql,
    config: db.config.with(extra),
    log: moduleLogger("finaud"),
    check: (hosts) => {
      checked = hosts;
      return Promise.resolve({ bad: [], timedOut: false, ...outcome });
    },
  });
  return { code, checked };
}

function dbTest(name: string, fn: (db: TestDb) => Promise<void>) {
  Deno.test(`finaud: ${name}`, async () => {
    await using db = await createTestDb();
    await fn(db);
  });
}

async function hostState(db: TestDb, host: string) {
  return [
    ...await db.sql<{ state: string; next_state: string; next_finaud_decision: string }[]>`
      SELECT DISTINCT state, next_state, next_finaud_decision FROM resources
      WHERE network_address = ${host}`,
  ];
}

dbTest("void: five Alive nodes, none bad, exit 0", async (db) => {
  await insertResources(db.sql, HOSTS, 2);
  const run = await finaud(db);
  assertEquals(run.code, 0);
  assertEquals(run.checked, HOSTS);
});

dbTest("one bad node: next_state Suspected, FINAUD_ERROR, exit 1", async (db) => {
  await insertResources(db.sql, HOSTS, 2);
  assertEquals((await finaud(db, { bad: ["localhost0"] })).code, 1);
  assertEquals(await hostState(db, "localhost0"), [
    { state: "Alive", next_state: "Suspected", next_finaud_decision: "YES" },
  ]);
  assertEquals((await hostState(db, "localhost1"))[0].next_state, "UnChanged");
  const events = await jobEvents(db.sql, 0, "FINAUD_ERROR");
  assertEquals(events.map((e) => [e.hostnames, e.description]), [
    [["localhost0"], "Finaud has detected an error on the node"],
  ]);
  // Pending change: not checked again until NodeChangeState applied it.
  assertOk(!(await finaud(db)).checked.includes("localhost0"));
});

dbTest("a node Suspected by Finaud that answers again: next_state Alive, exit 1", async (db) => {
  await insertResources(db.sql, HOSTS, 1);
  await db.sql`
    UPDATE resources SET state = 'Suspected', finaud_decision = 'YES'
    WHERE network_address = 'localhost0'`;
  assertEquals((await finaud(db)).code, 1);
  assertEquals(await hostState(db, "localhost0"), [
    { state: "Suspected", next_state: "Alive", next_finaud_decision: "YES" },
  ]);
  const [ev] = await jobEvents(db.sql, 0, "FINAUD_RECOVER");
  assertEquals(ev.description, "Finaud has detected that the node comes back");
});

dbTest(
  "a node Suspected by an event (finaud_decision NO) is not Finaud's to revive",
  async (db) => {
    await insertResources(db.sql, ["localhost0"], 1);
    await db.sql`UPDATE resources SET state = 'Suspected', finaud_decision = 'NO'`;
    const run = await finaud(db);
    assertEquals([run.code, run.checked], [0, []]);
  },
);

dbTest(
  "candidates: only default, non desktop-computing resources without pending change",
  async (db) => {
    const [a, b, c, d] = await insertResources(db.sql, ["n-a", "n-b", "n-c", "n-d"], 1);
    await db.sql`UPDATE resources SET type = 'licence' WHERE resource_id = ${a}`;
    await db.sql`UPDATE resources SET desktop_computing = 'YES' WHERE resource_id = ${b}`;
    await db.sql`UPDATE resources SET next_state = 'Absent' WHERE resource_id = ${c}`;
    await db.sql`UPDATE resources SET state = 'Dead' WHERE resource_id = ${d}`;
    assertEquals((await finaud(db)).checked, []);
  },
);

dbTest("a bad host's Absent resource is left to the admin", async (db) => {
  const [alive, absent] = await insertResources(db.sql, ["n1"], 2);
  await db.sql`UPDATE resources SET state = 'Absent' WHERE resource_id = ${absent}`;
  assertEquals((await finaud(db, { bad: ["n1"] })).code, 1);
  assertEquals((await getResource(db.sql, alive))?.next_state, "Suspected");
  assertEquals((await getResource(db.sql, absent))?.next_state, "UnChanged");
});

dbTest("busy nodes: skipped by default and for no/No/NO; checked for yes/YES (§12)", async (db) => {
  const [busy] = await insertResources(db.sql, ["busy", "idle"], 1);
  await insertJob(db.sql, { state: "Running", resources: [busy] });
  assertEquals((await finaud(db)).checked, ["idle"]);
  for (const v of ["no", "No", "NO"]) {
    assertEquals((await finaud(db, {}, { CHECK_NODES_WITH_RUNNING_JOB: v })).checked, ["idle"]);
  }
  for (const v of ["yes", "YES"]) {
    assertEquals(
      (await finaud(db, {}, { CHECK_NODES_WITH_RUNNING_JOB: v })).checked,
      ["busy", "idle"],
    );
  }
});

dbTest("a finished job's leftover assignment does not make a node busy", async (db) => {
  const [r] = await insertResources(db.sql, ["n1"], 1);
  await insertJob(db.sql, { state: "Terminated", resources: [r] });
  assertEquals((await finaud(db)).checked, ["n1"]);
});

dbTest("check timed out: every node bad", async (db) => {
  await insertResources(db.sql, ["n1", "n2"], 1);
  assertEquals((await finaud(db, { bad: ["n1", "n2"], timedOut: true })).code, 1);
  assertEquals((await hostState(db, "n2"))[0].next_state, "Suspected");
});

dbTest("check could not run: no decision, exit 0", async (db) => {
  await insertResources(db.sql, ["n1"], 1);
  assertEquals((await finaud(db, { error: "cannot run fping" })).code, 0);
  assertEquals((await hostState(db, "n1"))[0].next_state, "UnChanged");
});

// --- the node checks ----------------------------------------------------------------------

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "oar-ping-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("pingchecker: generic command gets hosts as arguments, prints the bad ones", async () => {
  await withDir(async (dir) => {
    // Records its argv, one per line, and reports the second host bad (plus noise).
    const cmd = await script(
      dir,
      "check",
      `for a in "$@"; do echo "$a" >> ${dir}/argv; done\necho "$3"\necho "some noise"`,
    );
    const hosts = ["n1", "n'2", "n$(x)3"];
    const r = await pingchecker(hosts, new Config({ PINGCHECKER_GENERIC_COMMAND: `${cmd} -v` }));
    assertEquals(r, { bad: ["n'2"], timedOut: false });
    assertEquals((await Deno.readTextFile(`${dir}/argv`)).split("\n"), ["-v", ...hosts, ""]);
  });
});

Deno.test("pingchecker: a host name that looks like an option is never passed", async () => {
  await withDir(async (dir) => {
    const cmd = await script(dir, "check", `echo "$@" > ${dir}/argv`);
    const r = await pingchecker(
      ["n1", "-oProxyCommand=x"],
      new Config({
        PINGCHECKER_GENERIC_COMMAND: cmd,
      }),
    );
    assertEquals(r.bad, ["-oProxyCommand=x"]);
    assertEquals(await Deno.readTextFile(`${dir}/argv`), "n1\n");
  });
});

Deno.test("pingchecker: fping -u output lists the unreachable hosts", async () => {
  await withDir(async (dir) => {
    const cmd = await script(
      dir,
      "fping",
      `[ "$1" = "-u" ] || exit 3\necho "n2 is unreachable"\nexit 1`,
    );
    const r = await pingchecker(["n1", "n2"], new Config({ PINGCHECKER_FPING_COMMAND: cmd }));
    assertEquals(r, { bad: ["n2"], timedOut: false });
  });
});

Deno.test("pingchecker: nmap -oG reports the good hosts; the others are bad", async () => {
  await withDir(async (dir) => {
    const cmd = await script(
      dir,
      "nmap",
      `case "$*" in "-p 22 -oG - "*) ;; *) exit 3;; esac
echo "# Nmap 7.93 scan initiated"
echo "Host: 10.0.0.1 (n1)	Ports: 22/open/tcp//ssh///"
echo "Host: 10.0.0.2 (n2)	Ports: 22/closed/tcp//ssh///"
echo "Host: 10.0.0.3 ()	Ports: 22/open/tcp//ssh///"`,
    );
    const r = await pingchecker(
      ["n1", "n2", "10.0.0.3", "n4"],
      new Config({ PINGCHECKER_NMAP_COMMAND: `${cmd} -p 22` }),
    );
    assertEquals(r, { bad: ["n2", "n4"], timedOut: false });
  });
});

Deno.test("pingchecker: a check that outlives its timeout makes every host bad", async () => {
  await withDir(async (dir) => {
    const cmd = await script(dir, "slow", "exec sleep 30");
    const t = Date.now();
    const r = await pingchecker(["n1", "n2"], new Config({ PINGCHECKER_GENERIC_COMMAND: cmd }), {
      timeoutMs: 300,
    });
    assertEquals(r, { bad: ["n1", "n2"], timedOut: true });
    assertOk(Date.now() - t < 5000);
  });
});

Deno.test("pingchecker: TIMEOUT_SSH sets the timeout (twice it)", async () => {
  await withDir(async (dir) => {
    const cmd = await script(dir, "slow", "exec sleep 30");
    const t = Date.now();
    const r = await pingchecker(
      ["n1"],
      new Config({ PINGCHECKER_GENERIC_COMMAND: cmd, TIMEOUT_SSH: 1 }),
    );
    const took = Date.now() - t;
    assertEquals(r.timedOut, true);
    assertOk(took >= 1900 && took < 6000, `took ${took} ms`);
  });
});

Deno.test("pingchecker: a missing command is an error, not a verdict", async () => {
  const r = await pingchecker(
    ["n1"],
    new Config({ PINGCHECKER_GENERIC_COMMAND: "/nonexistent/x" }),
  );
  assertEquals([r.bad, r.timedOut], [[], false]);
  assertOk(r.error?.includes("/nonexistent/x"));
});

Deno.test("pingchecker: built-in TCP check on OPENSSH_CMD's port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const c of listener) c.close();
  })();
  try {
    const config = new Config({ OPENSSH_CMD: `/usr/bin/ssh -p ${port}`, OAREXEC_LAUNCHER: "ssh" });
    assertEquals(pingMethod(config), { kind: "builtin-tcp", port });
    // 127.0.0.2 is loopback too, but nothing listens there.
    const r = await pingchecker(["127.0.0.1", "127.0.0.2"], config);
    assertEquals(r, { bad: ["127.0.0.2"], timedOut: false });
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("pingchecker: with the local launcher every node is alive", async () => {
  const config = new Config({ OAREXEC_LAUNCHER: "local", OPENSSH_CMD: "/usr/bin/ssh -p 1" });
  assertEquals(pingMethod(config), { kind: "builtin-local" });
  assertEquals(await pingchecker(["node1", "node2"], config), { bad: [], timedOut: false });
});

Deno.test("pingchecker: method order nmap, generic, fping", () => {
  const all = new Config({
    PINGCHECKER_NMAP_COMMAND: "nmap",
    PINGCHECKER_GENERIC_COMMAND: "g",
    PINGCHECKER_FPING_COMMAND: "fping -q",
  });
  assertEquals(pingMethod(all).kind, "nmap");
  assertEquals(pingMethod(all.with({ PINGCHECKER_NMAP_COMMAND: "" })).kind, "generic");
  assertEquals(
    pingMethod(new Config({ PINGCHECKER_FPING_COMMAND: "fping -q" })),
    { kind: "fping", argv: ["fping", "-q"] },
  );
});

Deno.test("sshPort: -p N, -pN, -o Port=N, default 22", () => {
  assertEquals(sshPort("/usr/bin/ssh -p 6667"), 6667);
  assertEquals(sshPort("ssh -p6668 -q"), 6668);
  assertEquals(sshPort("ssh -o Port=2222"), 2222);
  assertEquals(sshPort("ssh -oPort=2223"), 2223);
  assertEquals(sshPort("/usr/bin/ssh"), 22);
  assertEquals(sshPort("ssh -p notaport"), 22);
});
