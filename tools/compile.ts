/**
 * `deno task compile`: one self-contained artifact per module and command in dist/, with the
 * entry's permission flags (lib/permissions/mod.ts, under the configuration in force) baked in.
 * The configuration is found as for every `deno task` in the project tree (OARCONFFILE, else
 * ./var/oar.conf when it exists, else /etc/oar/oar.conf): for a real cluster, name it with
 * OARCONFFILE.
 *
 * - With DENORT_BIN (the denort runtime, which our machines cannot download): `deno compile`.
 * - Otherwise: `deno bundle` into one JavaScript file, every npm dependency inlined, behind a
 *   two-line header that runs it with `deno run <flags>`, executable. This is the path CI
 *   exercises. (A `#!/usr/bin/env -S deno run <flags>` line cannot carry them: Linux cuts a #!
 *   line at 256 bytes, and the flag lists are longer.)
 *
 * Point OARDIR at dist/ and almighty and bipbip_commander run these artifacts.
 */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { ConfigError, configLabel, loadConfig } from "../lib/runtime/config.ts";
import { ALL_ENTRIES, type EntryName, entrySpec, permissionFlags } from "../lib/permissions/mod.ts";
import { projectRoot } from "../lib/runtime/paths.ts";
import pLimit from "p-limit";

export async function main(args: string[]): Promise<number> {
  const outDir = args[0] ?? join(projectRoot, "dist");
  let config;
  try {
    config = loadConfig("project");
  } catch (e) {
    console.error(e instanceof ConfigError ? e.message : String(e));
    return 1;
  }
  // The flags depend on the file: say which one they were computed from.
  console.error(`flags computed from ${configLabel(config)}`);
  await Deno.mkdir(outDir, { recursive: true });
  const denort = Deno.env.get("DENORT_BIN");
  const limit = pLimit(2);
  // Entries of the table whose module is not written yet are reported, not built.
  const present = ALL_ENTRIES.filter((n) => existsSync(join(projectRoot, entrySpec(n).entry)));
  const absent = ALL_ENTRIES.filter((n) => !present.includes(n));
  if (absent.length) console.error(`not built (no source yet): ${absent.join(", ")}`);
  const results = await Promise.all(
    present.map((name) => limit(() => build(name, outDir, permissionFlags(name, config), denort))),
  );
  const failed = results.filter((r) => r !== null);
  for (const f of failed) console.error(f);
  console.log(
    `${present.length - failed.length} artifacts in ${outDir} (${
      denort ? "deno compile" : "deno bundle"
    })`,
  );
  return failed.length ? 1 : 0;
}

/**
 * Builds one entry's artifact at `outDir/name`; `env` is set for it by its header (bundles
 * only). Returns null, or what went wrong.
 */
export async function build(
  name: EntryName,
  outDir: string,
  flags: string[],
  denort: string | undefined,
  env: Record<string, string> = {},
): Promise<string | null> {
  const entry = join(projectRoot, entrySpec(name).entry);
  const out = join(outDir, name);
  const cmd = denort
    ? ["compile", "--quiet", "--no-prompt", ...flags, "-o", out, entry]
    : ["bundle", "--quiet", "-o", `${out}.js`, entry];
  const r = await new Deno.Command(Deno.execPath(), {
    args: cmd,
    env: denort ? { DENORT_BIN: denort } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) return `${name}: ${new TextDecoder().decode(r.stderr).trim()}`;
  if (!denort) {
    const body = await Deno.readTextFile(`${out}.js`);
    await Deno.remove(`${out}.js`);
    await Deno.writeTextFile(out, `${bakedHeader(flags, env)}\n${body}`, { mode: 0o755 });
    await Deno.chmod(out, 0o755);
  }
  return null;
}

/**
 * The first lines of a bundled artifact: the file is a shell script whose second line, a
 * comment to JavaScript, re-runs the file itself with deno and its permissions.
 */
export function bakedHeader(flags: string[], env: Record<string, string> = {}): string {
  const quoted = ["--quiet", "--no-prompt", ...flags].map(shellQuote).join(" ");
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)} `).join("");
  return `#!/bin/sh\n//bin/true; ${vars}exec deno run ${quoted} "$0" "$@"`;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_=,.:/+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
