import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { Config } from "../lib/runtime/config.ts";
import { logLevelFor, setupLogging } from "../lib/runtime/log.ts";

Deno.test("LOG_LEVEL maps OAR's 1-3 to logtape levels", () => {
  assertEquals(logLevelFor(1), "error");
  assertEquals(logLevelFor(2), "info");
  assertEquals(logLevelFor(3), "debug");
});

Deno.test("LOG_FILE receives lines of the module's category at the configured level", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/oar.log`;
    const log = setupLogging("sarko", new Config({ LOG_FILE: file, LOG_LEVEL: 1 }));
    log.info("not written at level 1");
    log.error("a real problem with job {id}", { id: 42 });
    let text = await Deno.readTextFile(file);
    assertEquals(text.includes("not written"), false);
    assertStringIncludes(text, "oar.modules.sarko");
    assertStringIncludes(text, "a real problem with job 42");
    const log3 = setupLogging("finaud", new Config({ LOG_FILE: file, LOG_LEVEL: 3 }));
    log3.debug("debug line");
    text = await Deno.readTextFile(file);
    assertStringIncludes(text, "oar.modules.finaud");
    assertStringIncludes(text, "debug line");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unwritable LOG_FILE falls back to stderr instead of killing the module", () => {
  const log = setupLogging("almighty", new Config({ LOG_FILE: "/nonexistent/dir/oar.log" }));
  assertOk(log);
});
