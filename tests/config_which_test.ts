/**
 * Every command says which oar.conf and which database it uses: `deno task <entry>` with
 * OAR_VERBOSE=1, and every failure to reach or log in to the database (commands through the
 * command server, oar-database, one-shot modules), naming the file and the target.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { childEnv, runEntry } from "./support/proc.ts";
import { createTestDb, writeConfigFile } from "./support/testdb.ts";
import { startCommandServer } from "./support/command_server.ts";

const root = new URL("../", import.meta.url).pathname;

async function task(args: string[], vars: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", ...args],
    cwd: root,
    ...childEnv(vars),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("deno task: OAR_VERBOSE=1 names the file, the rule that chose it and the target", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oar-which-" });
  try {
    const varDir = `${dir}/var`;
    await Deno.mkdir(varDir);
    const system = `${dir}/system.conf`;
    await Deno.writeTextFile(system, `COMMAND_SERVER_SOCKET="${dir}/system.sock"\n`);
    const vars = { OAR_VAR_DIR: varDir, OAR_SYSTEM_CONF: system, OAR_VERBOSE: "1" };

    // No quick start yet: the system file.
    let r = await task(["oarstat"], vars);
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(
      r.stderr,
      `oar-deno: oarstat: configuration ${system} (the system file); command server ${dir}/system.sock`,
    );
    // The error says where the socket path came from.
    assertStringIncludes(
      r.stderr,
      `cannot reach the OAR command server at ${dir}/system.sock (COMMAND_SERVER_SOCKET of ${system})`,
    );

    // A quick start's ./var/oar.conf comes before the system file.
    const quick = `${varDir}/oar.conf`;
    await Deno.writeTextFile(
      quick,
      `COMMAND_SERVER_SOCKET="${varDir}/oar-commands.sock"\nDB_HOSTNAME="${varDir}/pgsocket"\n`,
    );
    r = await task(["oarstat"], vars);
    assertStringIncludes(
      r.stderr,
      `configuration ${quick} (the project's quick-start file); command server ${varDir}/oar-commands.sock`,
    );
    // A module or oar-database names its database.
    r = await task(["oar-database", "--help"], vars);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(
      r.stderr,
      `oar-database: configuration ${quick} (the project's quick-start file); database "oar" as ` +
        `"oar" at socket ${varDir}/pgsocket/.s.PGSQL.5432`,
    );

    // OARCONFFILE wins, and a broken one is named with its rule.
    const broken = `${dir}/broken.conf`;
    await Deno.writeTextFile(broken, "not a setting\n");
    r = await task(["oarstat"], { ...vars, OARCONFFILE: broken });
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `${broken}:1: expected KEY=value`);
    assertStringIncludes(r.stderr, "(OARCONFFILE)");

    // Without OAR_VERBOSE nothing more is said; a value we do not understand is refused.
    r = await task(["oar-database", "--help"], { ...vars, OAR_VERBOSE: "0" });
    assertEquals(r.stderr.includes("configuration"), false, r.stderr);
    r = await task(["oarstat"], { ...vars, OAR_VERBOSE: "loud" });
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, `OAR_VERBOSE must be 1 or 0 (yes or no), not "loud"`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a database login refused is named with the oar.conf and the database, everywhere", async () => {
  await using db = await createTestDb();
  const role = `oar_no_such_role_${crypto.randomUUID().slice(0, 8)}`;
  const conf = await writeConfigFile(db, { DB_BASE_LOGIN: role });
  const named = (out: string, what: string) => {
    // Trust (the machine's server) says the role does not exist; scram (the throwaway instance,
    // like the embedded default) asks for a password first.
    assertOk(
      out.includes(`role "${role}" does not exist`) || /password|SASL|authentication/i.test(out),
      `${what}: ${out}`,
    );
    assertStringIncludes(out, conf, what);
    assertStringIncludes(out, `database "${db.name}" as "${role}"`, what);
  };

  const check = await runEntry("oar-database", conf, ["--check"]);
  assertEquals(check.code, 1);
  named(check.stderr, "oar-database");

  // A one-shot module logs it (LOG_FILE is stderr) and exits 1.
  const sarko = await runEntry("sarko", conf);
  assertEquals(sarko.code, 1);
  named(sarko.stderr, "sarko");
  assertStringIncludes(sarko.stderr, "cannot log in to the");

  // A command, through the command server: the server's file and database.
  await using _server = await startCommandServer(conf);
  const stat = await runEntry("oarstat", conf);
  assertEquals(stat.code, 1);
  named(stat.stderr, "oarstat");
  assertStringIncludes(stat.stderr, `#ERROR: cannot log in to the database "${db.name}"`);
});
