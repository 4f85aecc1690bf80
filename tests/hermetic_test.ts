/**
 * Tests cannot be fooled by the machine they run on: the cases of tests/fixtures/hermetic_cases.ts
 * run in a `deno test` process whose environment exports a decoy OARCONFFILE, OAR_VAR_DIR and
 * system configuration (OAR_SYSTEM_CONF), broken on its first line, and must all pass.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";

const cases = new URL("./fixtures/hermetic_cases.ts", import.meta.url).pathname;

Deno.test({
  name: "hermetic: with decoys in the environment, the test helpers still use the test's own",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "oar-decoy-" });
  const decoy = `${dir}/oar.conf`;
  // Broken on its first line: whoever reads it fails, naming it.
  await Deno.writeTextFile(decoy, "this is a decoy, not a setting\nDB_BASE_LOGIN=decoy\n");
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--quiet", cases],
      env: {
        OARCONFFILE: decoy,
        OAR_SYSTEM_CONF: decoy,
        OAR_VAR_DIR: dir,
        OAR_TEST_DECOY: decoy,
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    assertStringIncludes(text, "3 passed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
