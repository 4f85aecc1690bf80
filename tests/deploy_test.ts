/**
 * Deployment material: generated docs match the code; compiled artifacts run from dist/ with no
 * source tree beside them.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { permissionsDoc, sampleOarConf } from "../tools/deploy_docs.ts";
import { Config, DEFAULTS, parseOarConf } from "../lib/runtime/config.ts";
import { moduleCommand } from "../lib/runtime/spawn.ts";
import { oarexecCommand } from "../lib/exec/oarexec_command.ts";
import { bakedHeader } from "../tools/compile.ts";
import { freePort } from "./support/ports.ts";
import { childEnv, waitFor } from "./support/proc.ts";

const root = new URL("../", import.meta.url);

Deno.test("deploy/oar.conf lists every key with its default, as the code has them", async () => {
  const onDisk = await Deno.readTextFile(new URL("deploy/oar.conf", root));
  assertEquals(onDisk, sampleOarConf(), "run `deno task gen:deploy`");
  // Uncommented, the sample parses to exactly the defaults.
  const values = parseOarConf(onDisk.replace(/^#([A-Z0-9_]+=)/gm, "$1"));
  assertEquals(values.size, Object.keys(DEFAULTS).length);
  for (const [k, d] of Object.entries(DEFAULTS)) assertEquals(values.get(k), d.value, k);
});

Deno.test("oarexec's command without the permission table is the table's", () => {
  const configs = [
    new Config(),
    new Config({ SERVER_HOSTNAME: "10.0.0.1", SERVER_PORT: 7000, LOG_FILE: "/var/log/oar.log" }),
    new Config({ OAREXEC_DIRECTORY: "/var/lib/oar-x" }, "/etc/oar/oar.conf"),
    new Config({ OARDIR: "/opt/oar/dist" }, "/etc/oar/oar.conf"),
  ];
  for (const config of configs) {
    for (const args of [[], ["--detached"], ["--serve"]]) {
      assertEquals(oarexecCommand(config, args), moduleCommand("oarexec", config, args));
    }
  }
});

Deno.test("deploy/PERMISSIONS.md matches lib/permissions/mod.ts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/PERMISSIONS.md`, permissionsDoc());
    const fmt = await new Deno.Command(Deno.execPath(), {
      args: [
        "fmt",
        "--quiet",
        "--config",
        new URL("deno.json", root).pathname,
        `${dir}/PERMISSIONS.md`,
      ],
    }).output();
    assertEquals(fmt.code, 0);
    assertEquals(
      await Deno.readTextFile(new URL("deploy/PERMISSIONS.md", root)),
      await Deno.readTextFile(`${dir}/PERMISSIONS.md`),
      "run `deno task gen:deploy`",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("baked header carries the flags, quoted for the shell", () => {
  assertEquals(
    bakedHeader(["--allow-net=localhost:5432", "--allow-read=/a b"]),
    `#!/bin/sh\n//bin/true; exec deno run --quiet --no-prompt --allow-net=localhost:5432 ` +
      `'--allow-read=/a b' "$0" "$@"`,
  );
});

Deno.test("compile: artifacts run from a directory with no source tree beside them", async () => {
  const dist = await Deno.makeTempDir({ prefix: "oar-dist-" });
  try {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("tools/compile.ts", root).pathname, dist],
      // The defaults: no OARCONFFILE of ours, no ./var/oar.conf (an empty var dir), no /etc.
      ...childEnv({ OAR_VAR_DIR: `${dist}/no-var-dir` }),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(build.stdout) + new TextDecoder().decode(build.stderr);
    assertEquals(build.code, 0, log);
    const alone = await Deno.makeTempDir({ prefix: "oar-alone-" });
    try {
      for await (const e of Deno.readDir(dist)) {
        await Deno.copyFile(`${dist}/${e.name}`, `${alone}/${e.name}`);
        await Deno.chmod(`${alone}/${e.name}`, 0o755);
      }
      const run = async (name: string, args: string[]) => {
        const r = await new Deno.Command(`${alone}/${name}`, {
          args,
          cwd: alone,
          env: { OARCONFFILE: "/nonexistent/oar.conf" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const d = new TextDecoder();
        return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
      };
      const help = await run("oar-database", ["--help"]);
      assertEquals(help.code, 0, help.out);
      assertStringIncludes(help.out, "--create");
      const bad = await run("oar-database", ["--no-such-flag"]);
      assertEquals(bad.code, 2, bad.out);
      // A daemon artifact refuses a missing configuration with a clear message and exit 1.
      const proxy = await run("appendice_proxy", []);
      assertEquals(proxy.code, 1, proxy.out);
      assertStringIncludes(proxy.out, "/nonexistent/oar.conf");
    } finally {
      await Deno.remove(alone, { recursive: true });
    }
  } finally {
    await Deno.remove(dist, { recursive: true });
  }
});

Deno.test("compile: almighty run from its artifact starts its companions from theirs (OARDIR)", async () => {
  const dist = await Deno.makeTempDir({ prefix: "oar-dist-" });
  const confDir = await Deno.makeTempDir({ prefix: "oar-dist-conf-" });
  const [proxyPort, almightyPort, commanderPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const conf = `${confDir}/oar.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `OARDIR="${dist}"`,
      `SERVER_HOSTNAME="127.0.0.1"`,
      `SERVER_PORT=${proxyPort}`,
      `APPENDICE_SERVER_PORT=${almightyPort}`,
      `BIPBIP_COMMANDER_SERVER="127.0.0.1"`,
      `BIPBIP_COMMANDER_PORT=${commanderPort}`,
      `LOG_FILE=":stderr:"`,
      "",
    ].join("\n"),
  );
  let almighty: Deno.ChildProcess | null = null;
  try {
    // The flags baked into the artifacts are those of this configuration.
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("tools/compile.ts", root).pathname, dist],
      env: { OARCONFFILE: conf },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));
    almighty = new Deno.Command(`${dist}/almighty`, {
      env: { OARCONFFILE: conf },
      cwd: dist,
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor("the proxy artifact to listen", async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: proxyPort })).close();
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    const ps = await new Deno.Command("pgrep", { args: ["-af", dist], stdout: "piped" }).output();
    const procs = new TextDecoder().decode(ps.stdout);
    assertStringIncludes(procs, `${dist}/appendice_proxy`);
    assertStringIncludes(procs, `${dist}/bipbip_commander`);
    almighty.kill("SIGTERM");
    assertEquals((await almighty.status).code, 10);
    almighty = null;
  } finally {
    if (almighty) {
      almighty.kill("SIGKILL");
      await almighty.status;
    }
    await Deno.remove(dist, { recursive: true });
    await Deno.remove(confDir, { recursive: true });
  }
});
