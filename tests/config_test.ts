import { assertEquals, assertThrows } from "./support/assert.ts";
import {
  chooseConfigFile,
  Config,
  ConfigError,
  DEFAULTS,
  findConfigFile,
  loadConfig,
  parseOarConf,
  systemConfigFile,
} from "../lib/runtime/config.ts";

Deno.test("oar.conf: comments, quotes, numbers, whitespace", () => {
  const v = parseOarConf(
    [
      "# a comment",
      "",
      '  DB_HOSTNAME = "db.example.org"  # trailing comment',
      "DB_PORT=5433",
      "LOG_FILE='/var/log/oar.log'",
      'SCHEDULER_RESOURCE_ORDER="scheduler_priority ASC, state_num ASC"',
      'OPENSSH_CMD="/usr/bin/ssh -p 6667"',
      "RATIO=0.5",
      'QUOTED_HASH="a#b"',
      "EMPTY=",
    ].join("\n"),
  );
  assertEquals(v.get("DB_HOSTNAME"), "db.example.org");
  assertEquals(v.get("DB_PORT"), 5433);
  assertEquals(v.get("LOG_FILE"), "/var/log/oar.log");
  assertEquals(v.get("SCHEDULER_RESOURCE_ORDER"), "scheduler_priority ASC, state_num ASC");
  assertEquals(v.get("OPENSSH_CMD"), "/usr/bin/ssh -p 6667");
  assertEquals(v.get("RATIO"), 0.5);
  // OAR drops everything after the first '#', even inside quotes.
  assertEquals(v.get("QUOTED_HASH"), "a");
  assertEquals(v.get("EMPTY"), "");
});

Deno.test("oar.conf: a malformed line names file and line", () => {
  const e = assertThrows(
    () => parseOarConf("A=1\nthis is not a setting\n", "/etc/oar/oar.conf"),
    ConfigError,
  );
  assertEquals(e.line, 2);
  assertEquals(e.file, "/etc/oar/oar.conf");
  assertEquals(e.message.startsWith("/etc/oar/oar.conf:2:"), true);
  assertThrows(() => parseOarConf("BAD KEY=1", "f"), ConfigError, "f:1: invalid key");
  assertThrows(() => parseOarConf("=1", "f"), ConfigError, "f:1:");
});

Deno.test("config: defaults, typed getters, yes/no case-insensitive", () => {
  const c = new Config({ CHECK_NODES_WITH_RUNNING_JOB: "No", ENERGY_SAVING_INTERNAL: "YES" });
  assertEquals(c.bool("CHECK_NODES_WITH_RUNNING_JOB"), false);
  assertEquals(c.bool("ENERGY_SAVING_INTERNAL"), true);
  assertEquals(c.int("SERVER_PORT"), 6666);
  assertEquals(c.str("SERVER_HOSTNAME"), "localhost");
  assertEquals(c.isSet("SERVER_PORT"), false);
  assertEquals(c.with({ SERVER_PORT: "7000" }).int("SERVER_PORT"), 7000);
  assertThrows(() => c.with({ SERVER_PORT: "abc" }).int("SERVER_PORT"), ConfigError, "number");
  assertThrows(() => c.with({ QUOTAS: "maybe" }).bool("QUOTAS"), ConfigError, "yes or no");
  for (const [key, d] of Object.entries(DEFAULTS)) {
    assertEquals(typeof d.doc, "string", key);
    assertEquals(d.doc.length > 0, true, key);
  }
});

Deno.test("config: OARCONFFILE is honoured", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/oar.conf`;
  await Deno.writeTextFile(file, "SERVER_PORT=7777\nLOG_LEVEL=3\n");
  const saved = Deno.env.get("OARCONFFILE");
  try {
    Deno.env.set("OARCONFFILE", file);
    const c = loadConfig();
    assertEquals(c.source, file);
    assertEquals(c.int("SERVER_PORT"), 7777);
    await Deno.writeTextFile(file, "SERVER_PORT=7777\noops\n");
    assertThrows(() => loadConfig(), ConfigError, `${file}:2:`);
    Deno.env.set("OARCONFFILE", `${dir}/missing.conf`);
    assertThrows(() => loadConfig(), ConfigError, "cannot read");
  } finally {
    if (saved === undefined) Deno.env.delete("OARCONFFILE");
    else Deno.env.set("OARCONFFILE", saved);
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs `fn` with these variables set (undefined: removed), restoring the previous values. */
async function withEnv(vars: Record<string, string | undefined>, fn: () => void | Promise<void>) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      x === undefined ? Deno.env.delete(k) : Deno.env.set(k, x);
    }
  };
  try {
    apply(vars);
    await fn();
  } finally {
    apply(saved);
  }
}

Deno.test("config: OARCONFFILE, then ./var/oar.conf under deno task only, then the system file", async () => {
  const dir = await Deno.makeTempDir();
  const system = `${dir}/system.conf`;
  const varDir = `${dir}/var`;
  const explicit = `${dir}/explicit.conf`;
  await Deno.mkdir(varDir);
  for (const f of [system, explicit]) await Deno.writeTextFile(f, "SERVER_PORT=1\n");
  try {
    await withEnv(
      { OARCONFFILE: undefined, OAR_SYSTEM_CONF: system, OAR_VAR_DIR: varDir },
      async () => {
        assertEquals(systemConfigFile(), system);
        // No ./var/oar.conf yet: both orders take the system file.
        assertEquals(chooseConfigFile("project"), { file: system, why: "the system file" });
        assertEquals(findConfigFile("installed"), system);
        await Deno.writeTextFile(`${varDir}/oar.conf`, "SERVER_PORT=2\n");
        assertEquals(chooseConfigFile("project"), {
          file: `${varDir}/oar.conf`,
          why: "the project's quick-start file",
        });
        assertEquals(loadConfig("project").int("SERVER_PORT"), 2);
        // Installed programs and modules never take the project's file.
        assertEquals(findConfigFile(), system);
        assertEquals(loadConfig().int("SERVER_PORT"), 1);
        // An explicit OARCONFFILE wins everywhere, even when it does not exist (an error, no fallback).
        Deno.env.set("OARCONFFILE", explicit);
        assertEquals(chooseConfigFile("project"), { file: explicit, why: "OARCONFFILE" });
        Deno.env.set("OARCONFFILE", `${dir}/missing.conf`);
        assertThrows(() => loadConfig("project"), ConfigError, "missing.conf: cannot read");
        Deno.env.delete("OARCONFFILE");
        // Nothing at all: built-in defaults.
        Deno.env.set("OAR_SYSTEM_CONF", `${dir}/none.conf`);
        await Deno.remove(`${varDir}/oar.conf`);
        assertEquals(findConfigFile("project"), null);
        assertEquals(loadConfig("project").source, "");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
