/**
 * A test server that cannot start fails its test at once, with the server's own last lines,
 * rather than after the 60 s wait for "listening"; and disposing of it then does not replace
 * that error with one of its own (Deno shows a SuppressedError without either message).
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { TestServer } from "./support/server.ts";

Deno.test("TestServer: start.ts exiting fails start() in seconds, with its last lines", async () => {
  const server = await TestServer.create();
  // An oar.conf start.ts cannot read: it says so and exits 1.
  await Deno.writeTextFile(server.confPath, "this line is not a setting\n");
  const t0 = Date.now();
  let error: Error | null = null;
  try {
    await server.start({ hosts: 1, cores: 1 });
  } catch (e) {
    error = e as Error;
  }
  const took = Date.now() - t0;
  assertOk(error !== null, "start() succeeded on a broken oar.conf");
  assertOk(took < 30_000, `start() took ${took} ms to fail`);
  assertStringIncludes(error.message, "tools/start.ts exited (code 1) before it was ready");
  assertStringIncludes(error.message, "the server's last 40 lines:");
  // start.ts's own message, naming the file and the line.
  assertStringIncludes(error.message, `${server.confPath}:1: expected KEY=value`);
  // Nothing to stop: dispose neither throws nor leaves the var directory.
  await server[Symbol.asyncDispose]();
  const gone = await Deno.stat(server.varDir).then(() => false, () => true);
  assertEquals(gone, true);
});
