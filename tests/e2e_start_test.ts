/**
 * The whole server as an admin runs it: `deno task start` on the embedded default (its own
 * PostgreSQL under a fresh var directory), then the real commands, as a user would type them.
 * A job submitted with oarsub runs on the local cluster and ends Terminated with its output;
 * Ctrl-C stops everything and leaves no process behind.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { TestServer } from "./support/server.ts";

Deno.test("deno task start: oarsub then oarstat on the embedded default; Ctrl-C leaves nothing", async () => {
  await using server = await TestServer.create();
  const work = await Deno.makeTempDir({ prefix: "oar-e2e-work-" });
  try {
    await server.start();
    const id = await server.submit(["-d", work, "-l", "core=1", "echo hello"]);
    assertEquals(await server.finalState(id), "Terminated", server.log);
    assertEquals(await Deno.readTextFile(`${work}/OAR.${id}.stdout`), "hello\n");
    // Finished jobs leave the default table, as in OAR; -j still shows them.
    const table = await server.task(["oarstat", "-j", String(id)]);
    assertStringIncludes(table.stdout, `${id} `);
    assertStringIncludes(table.stdout, " T ");
    assertEquals(await server.stop(), 0, server.log);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
