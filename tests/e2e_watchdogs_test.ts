/**
 * The watchdogs through almighty, on the whole server (`deno task start`), checked with the
 * real commands: a job over its walltime is killed and ends in Error with a WALLTIME event; a
 * node that stops answering becomes Suspected, and Alive again once it answers.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { TestServer } from "./support/server.ts";

Deno.test("e2e: a job over its walltime is killed by sarko and leon and ends in Error", async () => {
  await using server = await TestServer.create();
  const work = await Deno.makeTempDir({ prefix: "oar-e2e-work-" });
  try {
    await server.start();
    const id = await server.submit(["-d", work, "-l", "core=1,walltime=0:0:2", "sleep 300"]);
    // Sarko runs at least every 10 s; then Leon's TERM ends the job's process tree.
    assertEquals(await server.finalState(id, 90_000), "Error", server.log);
    const events = await server.task(["oarstat", "-e", "-j", String(id)]);
    assertStringIncludes(events.stdout, "WALLTIME");
    assertStringIncludes(events.stdout, "SEND_KILL_JOB");
    assertStringIncludes(await Deno.readTextFile(`${work}/OAR.${id}.stderr`), `Job ${id} KILLED`);
    assertEquals(await server.stop(), 0, server.log);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("e2e: a node that stops answering is Suspected, and recovers when it answers", async () => {
  await using server = await TestServer.create();
  const dir = await Deno.makeTempDir({ prefix: "oar-e2e-check-" });
  try {
    // A node check that reports the hosts listed in a file (PINGCHECKER_GENERIC_COMMAND prints
    // the bad hosts), and finaud every 2 s.
    const check = `${dir}/check`;
    await Deno.writeTextFile(check, `#!/bin/sh\ncat "${dir}/bad" 2>/dev/null\nexit 0\n`, {
      mode: 0o755,
    });
    await server.start();
    assertEquals(await server.stop(), 0, server.log);
    await server.configure({ PINGCHECKER_GENERIC_COMMAND: check, FINAUD_FREQUENCY: 2 });
    await server.start();
    const stateOf = async (host: string) => {
      const r = await server.task(["oarnodes", "-s", "-J"]);
      const states = Object.values(JSON.parse(r.stdout)[host] ?? {}) as string[];
      return [...new Set(states)].join(",");
    };
    assertEquals(await stateOf("node1"), "Alive");
    await Deno.writeTextFile(`${dir}/bad`, "node1\n");
    await waitFor(
      "node1 to be Suspected",
      async () => await stateOf("node1") === "Suspected",
      60_000,
    );
    assertEquals(await stateOf("node2"), "Alive");
    await Deno.remove(`${dir}/bad`);
    await waitFor("node1 to recover", async () => await stateOf("node1") === "Alive", 60_000);
    assertEquals(await server.stop(), 0, server.log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
