/**
 * Tests cannot be fooled by the machine they run on: with a decoy OARCONFFILE, OAR_VAR_DIR and
 * system configuration (OAR_SYSTEM_CONF, standing for another OAR's /etc/oar/oar.conf) exported
 * in this test process, the helpers of tests/support still run modules, commands, `deno task` and
 * tools/start.ts against the test's own configuration. The decoys are set inside each test and
 * restored after it (under --parallel each test file is its own process; without it, the files
 * share one, and must not see them).
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { runEntry } from "./support/proc.ts";
import { createTestDb, writeConfigFile } from "./support/testdb.ts";
import { startCommandServer } from "./support/command_server.ts";
import { TestServer } from "./support/server.ts";

const root = new URL("../", import.meta.url).pathname;

/** Runs `fn` with every decoy exported; returns what a plain child of ours would read. */
async function withDecoys(fn: (decoy: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "oar-decoy-" });
  const decoy = `${dir}/oar.conf`;
  // Broken on its first line: whoever reads it fails, naming it.
  await Deno.writeTextFile(decoy, "this is a decoy, not a setting\nDB_BASE_LOGIN=decoy\n");
  const vars = { OARCONFFILE: decoy, OAR_SYSTEM_CONF: decoy, OAR_VAR_DIR: dir };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  try {
    for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
    await fn(decoy);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("hermetic: the decoys would break a child that inherits them", async () => {
  await withDecoys(async (decoy) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "oarstat"],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 1);
    assertStringIncludes(new TextDecoder().decode(out.stderr), `${decoy}:1: expected KEY=value`);
  });
});

Deno.test("hermetic: runEntry, spawnEntry and the command server ignore the decoys", async () => {
  await using db = await createTestDb();
  const conf = await writeConfigFile(db);
  await withDecoys(async () => {
    const check = await runEntry("oar-database", conf, ["--check"]);
    assertEquals(check.code, 0, check.stderr);
    assertStringIncludes(check.stdout + check.stderr, "schema complete");
    const sarko = await runEntry("sarko", conf);
    assertEquals(sarko.code, 0, sarko.stderr);
    await using _server = await startCommandServer(conf);
    const stat = await runEntry("oarstat", conf);
    assertEquals(stat.code, 0, stat.stderr);
  });
});

Deno.test("hermetic: TestServer (tools/start.ts, deno task) ignores the decoys", async () => {
  await withDecoys(async () => {
    await using server = await TestServer.create();
    await server.start({ hosts: 1, cores: 1 });
    const id = await server.submit(["-l", "core=1", "true"]);
    assertEquals(await server.finalState(id), "Terminated");
    assertEquals(await server.stop(), 0);
  });
});
