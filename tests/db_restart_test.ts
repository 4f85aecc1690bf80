/**
 * A database restart under a running server (issue 11): PostgreSQL (the server's own embedded
 * instance, never the shared one) is stopped, cutting every session, and started again while a
 * job runs. The daemons (almighty, appendice_proxy, bipbip_commander, greta) are the same
 * processes afterwards, the running job ends normally and a new one runs.
 */
import { assertEquals } from "./support/assert.ts";
import { daemonPid, restartDatabase, serverDb } from "./support/fault_helpers.ts";
import { waitFor } from "./support/proc.ts";
import { TestServer } from "./support/server.ts";

const DAEMONS = ["almighty", "appendice_proxy", "bipbip_commander", "greta"];

Deno.test("database restart: the daemons survive it, a running job ends normally, a new one runs", async () => {
  await using server = await TestServer.create();
  const work = await Deno.makeTempDir({ prefix: "oar-dbrestart-" });
  try {
    await server.start();
    assertEquals(await server.stop(), 0, server.log);
    await server.configure({
      ENERGY_SAVING_INTERNAL: "yes",
      SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: 1,
    });
    await server.start();
    const before = new Map<string, number | undefined>();
    for (const d of DAEMONS) before.set(d, await daemonPid(server.varDir, d));
    for (const [d, pid] of before) assertEquals(typeof pid, "number", `${d} runs`);
    const first = await server.submit(["-d", work, "-l", "core=1", "sleep 3"]);
    const db = serverDb(server.confPath);
    try {
      await waitFor("the first job to run", async () => {
        const [r] = await db<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${first}`;
        return r?.state === "Running";
      }, 30_000);
    } finally {
      await db.end();
    }
    const mark = server.log.length;
    await restartDatabase(server.varDir);
    // A submission while the daemons' sessions reconnect.
    const second = await waitFor("a submission to succeed", async () => {
      try {
        return await server.submit(["-d", work, "-l", "core=1", "true"]);
      } catch {
        return undefined;
      }
    }, 30_000);
    assertEquals(await server.finalState(first), "Terminated");
    assertEquals(await server.finalState(second), "Terminated");
    for (const [d, pid] of before) {
      assertEquals(await daemonPid(server.varDir, d), pid, `${d} is the same process`);
    }
    console.log(
      `database restart: log after it:\n${
        server.log.slice(mark).split("\n").filter((l) => /ERR|WRN/.test(l)).slice(0, 15).join("\n")
      }`,
    );
    assertEquals(await server.stop(), 0, server.log.slice(-5000));
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
