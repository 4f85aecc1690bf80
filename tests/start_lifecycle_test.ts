/**
 * `deno task start`'s life cycle on real processes and a real embedded PostgreSQL (issue 22):
 * a stop at any moment of the first set-up leaves nothing running; one start per var dir; a
 * killed almighty comes back and serves; a PostgreSQL left by a crash is reused, then stopped;
 * explicit --hosts/--cores re-register a cluster without jobs and are refused with one.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { freePortBase, TestServer } from "./support/server.ts";
import { waitFor } from "./support/proc.ts";

const root = new URL("../", import.meta.url).pathname;

/** Processes whose command line mentions `dir` (postgres, initdb, start's children). */
async function processesOf(dir: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-af", dir], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
}

/** Entries of `dir` (names only; none when it is gone). */
function entries(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * A first start on a fresh var dir, sent `signal` once `ready(varDir)` holds: it must end by
 * itself, leaving no process, no initdb directory and no pid file.
 */
async function interruptFirstStart(
  signal: Deno.Signal,
  ready: (varDir: string) => boolean,
): Promise<void> {
  const varDir = await Deno.makeTempDir({ prefix: "oar-start-var-" });
  // An outside configuration that start must not use, and must say it ignores.
  const decoy = `${varDir}.decoy.conf`;
  await Deno.writeTextFile(decoy, 'DB_HOSTNAME="nowhere.invalid"\n');
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}tools/start.ts`, "--port-base", String(await freePortBase())],
    cwd: root,
    env: { OAR_VAR_DIR: varDir, OARCONFFILE: decoy, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    await waitFor(`the set-up to reach the point to interrupt`, () => ready(varDir), 60_000);
    child.kill(signal);
    const out = await output;
    const log = new TextDecoder().decode(out.stderr);
    assertStringIncludes(log, `ignoring ${decoy} (OARCONFFILE)`);
    assertStringIncludes(log, `${signal} during set-up`);
    assertEquals(out.code, signal === "SIGHUP" ? 129 : signal === "SIGINT" ? 130 : 143, log);
    await waitFor("no process left", async () => (await processesOf(varDir)).length === 0, 20_000)
      .catch(async (e) => {
        throw new Error(`${e.message}: ${(await processesOf(varDir)).join("\n")}\n${log}`);
      });
    const left = entries(varDir).filter((n) => n.includes("initdb") || n === "start.pid");
    assertEquals(left, [], log);
    assertEquals(entries(`${varDir}/pg`).includes("postmaster.pid"), false, log);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
    await output.catch(() => {});
    // A postgres that escaped would keep files open: stop it before removing (best effort).
    for (const line of await processesOf(varDir)) {
      try {
        Deno.kill(Number(line.split(" ")[0]), "SIGKILL");
      } catch { /* gone */ }
    }
    await Deno.remove(varDir, { recursive: true });
    await Deno.remove(decoy);
  }
}

const initdbRunning = (varDir: string) => entries(varDir).some((n) => n.includes(".initdb-"));

Deno.test("start: SIGINT during the first initdb stops it all, leaving nothing", async () => {
  await interruptFirstStart("SIGINT", initdbRunning);
});

Deno.test("start: SIGHUP (terminal closed) during the first initdb leaves nothing", async () => {
  await interruptFirstStart("SIGHUP", initdbRunning);
});

Deno.test("start: SIGTERM while PostgreSQL starts stops it, leaving nothing", async () => {
  await interruptFirstStart("SIGTERM", (v) => entries(`${v}/pg`).includes("postmaster.pid"));
});

/** pid of the running almighty (not its companions). */
async function almightyPid(server: TestServer): Promise<number | undefined> {
  const line = (await server.leftovers()).find((l) => /modules\/almighty\/main\.ts/.test(l));
  return line ? Number(line.split(" ")[0]) : undefined;
}

Deno.test("start: a second start on the same var dir is refused; a killed almighty comes back and serves", async () => {
  await using server = await TestServer.create();
  await server.start();

  const second = await server.runStart([]);
  assertEquals(second.code, 1, second.stderr);
  assertStringIncludes(second.stderr, "a server is already running (pid ");
  assertStringIncludes(second.stderr, `var dir ${server.varDir})`);

  const first = await almightyPid(server);
  assertOk(first, (await server.leftovers()).join("\n"));
  const mark = server.log.length;
  Deno.kill(first, "SIGKILL");
  const next = await waitFor("a new almighty", async () => {
    const pid = await almightyPid(server);
    return pid !== undefined && pid !== first ? pid : undefined;
  }, 15_000);
  assertOk(next !== first);
  assertStringIncludes(server.log.slice(mark), "almighty died (killed by SIGKILL)");
  // Its companions come back with it; the command server last of all answers the commands.
  await waitFor(
    "the companions to be back",
    () => /command_server: listening/.test(server.log.slice(mark)),
    30_000,
  );
  const work = await Deno.makeTempDir({ prefix: "oar-start-work-" });
  try {
    const id = await server.submit(["-d", work, "-l", "core=1", "echo again"]);
    assertEquals(await server.finalState(id), "Terminated", server.log);
    assertEquals(await Deno.readTextFile(`${work}/OAR.${id}.stdout`), "again\n");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  assertEquals(await server.stop(), 0, server.log);
});

Deno.test("start: a PostgreSQL left by a crashed start is reused, then stopped; a stale pid file is cleaned", async () => {
  await using server = await TestServer.create();
  await server.start();
  await server.signalStart("SIGKILL");
  // almighty and its companions follow their parent; the database stays, as after a crash.
  const left = await waitFor("only postgres left", async () => {
    const procs = await server.leftovers();
    return procs.length > 0 && procs.every((l) => /postgres/.test(l)) ? procs : undefined;
  }, 20_000);
  const pid = Number(Deno.readTextFileSync(`${server.varDir}/pg/postmaster.pid`).split("\n")[0]);
  assertOk(left.some((l) => l.startsWith(`${pid} `)), left.join("\n"));

  let mark = server.log.length;
  await server.start();
  assertStringIncludes(
    server.log.slice(mark),
    `reusing the PostgreSQL left running in ${server.varDir}/pg (pid ${pid})`,
  );
  // stop() checks that nothing is left, the reused server included.
  assertEquals(await server.stop(), 0, server.log);

  // A server killed with its pid file left behind (pid not running any more).
  await Deno.writeTextFile(
    `${server.varDir}/pg/postmaster.pid`,
    `999999\n${server.varDir}/pg\n0\n5432\n\n\n`,
  );
  mark = server.log.length;
  await server.start();
  assertStringIncludes(server.log.slice(mark), "removed the stale postmaster.pid");
  assertEquals(await server.stop(), 0, server.log);
});

Deno.test("start: explicit --hosts/--cores re-register a cluster without jobs, and are refused with one", async () => {
  await using server = await TestServer.create();
  await server.start({ hosts: 2, cores: 2 });
  assertEquals(await server.stop(), 0, server.log);

  let mark = server.log.length;
  await server.start({ hosts: 3, cores: 1 });
  assertStringIncludes(
    server.log.slice(mark),
    "re-registered the cluster as 3 resources (3 hosts × 1 cores)",
  );
  const nodes = await server.task(["oarnodes"]);
  assertStringIncludes(nodes.stdout, "node3", nodes.stderr);
  const work = await Deno.makeTempDir({ prefix: "oar-start-work-" });
  try {
    const id = await server.submit(["-d", work, "-l", "core=1", "true"]);
    assertEquals(await server.finalState(id), "Terminated", server.log);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  assertEquals(await server.stop(), 0, server.log);

  // The same shape again is no change: it starts.
  mark = server.log.length;
  await server.start({ hosts: 3, cores: 1 });
  assertEquals(server.log.slice(mark).includes("registered"), false, server.log.slice(mark));
  assertEquals(await server.stop(), 0, server.log);

  const refused = await server.runStart(["--hosts", "2", "--cores", "2"]);
  assertEquals(refused.code, 1, refused.stderr);
  assertStringIncludes(refused.stderr, "--hosts 2 --cores 2: the database already has");
  assertStringIncludes(refused.stderr, "holds 1 job");
  await waitFor("no process left", async () => (await server.leftovers()).length === 0, 20_000);
});
