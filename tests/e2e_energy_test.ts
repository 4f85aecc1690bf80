/**
 * Energy saving on the whole server: greta run by almighty, the meta-scheduler's wake-up
 * decisions, a node-manager script that "boots" a node by setting it Alive. A job that needs an
 * Absent node wakes exactly that node and runs once it is Alive.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { TestServer } from "./support/server.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("e2e energy: a job needing an Absent node wakes exactly it, then runs", async () => {
  await using server = await TestServer.create();
  const dir = await Deno.makeTempDir({ prefix: "oar-e2e-energy-" });
  try {
    // The "boot": the node tells the server it is up, as a node's boot script would.
    const wake = `${dir}/wake`;
    await Deno.writeTextFile(
      wake,
      `#!/bin/sh\nwhile read -r h; do echo "$h" >> "${dir}/woken"\n` +
        `cd "${root}" && OAR_VAR_DIR="${server.varDir}" "${Deno.execPath()}" task --quiet ` +
        `oarnodesetting -s Alive -h "$h" >/dev/null\ndone\n`,
      { mode: 0o755 },
    );
    await server.start();
    assertEquals(await server.stop(), 0, server.log);
    await server.configure({
      ENERGY_SAVING_INTERNAL: "yes",
      ENERGY_SAVING_MODE: "metascheduler_decision_making",
      ENERGY_SAVING_NODE_MANAGER_WAKE_UP_CMD: wake,
      ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD: "true",
      SCHEDULER_NODE_MANAGER_WAKEUP_TIME: 600,
    });
    await server.start();
    const stateOf = async (host: string) => {
      const r = await server.task(["oarnodes", "-s", "-J"]);
      return [...new Set(Object.values(JSON.parse(r.stdout)[host] ?? {}))].join(",");
    };
    const r = await server.task(["oarnodesetting", "-s", "Absent", "-h", "node2"]);
    assertEquals(r.code, 0, r.stderr);
    await waitFor("node2 to be Absent", async () => await stateOf("node2") === "Absent", 30_000);

    const id = await server.submit(["-d", dir, "-l", "/network_address=2/core=1", "true"]);
    assertEquals(await server.finalState(id, 90_000), "Terminated", server.log);
    assertEquals(await Deno.readTextFile(`${dir}/woken`), "node2\n");
    assertEquals(await stateOf("node2"), "Alive");
    assertStringIncludes(server.log, 'wake up "node2"');
    assertEquals(await server.stop(), 0, server.log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
