/**
 * The deployment documents generated from the code, so that they cannot drift from it:
 * deploy/oar.conf (every key we read, its default and meaning, from lib/runtime/config.ts DEFAULTS) and
 * deploy/PERMISSIONS.md (each entry's flags and why, from lib/permissions/mod.ts).
 */
import { Config, DEFAULTS } from "../lib/runtime/config.ts";
import { projectRoot } from "../lib/runtime/paths.ts";
import {
  COMMANDS,
  DAEMONS,
  type EntryName,
  entrySpec,
  NODE_MODULES,
  ONE_SHOTS,
  permissionFlags,
  permissionReasons,
} from "../lib/permissions/mod.ts";

export function sampleOarConf(): string {
  const lines = [
    "# oar-deno configuration: every key oar-deno reads, with its default.",
    "# Format: KEY=\"value\"; '#' starts a comment; yes/no values are case-insensitive.",
    "# Generated from lib/runtime/config.ts by `deno task gen:deploy`; do not edit here.",
    "",
  ];
  for (const [key, d] of Object.entries(DEFAULTS)) {
    lines.push(`# ${d.doc}`);
    lines.push(`#${key}="${d.value}"`);
  }
  return lines.join("\n") + "\n";
}

/** The flags of each entry under a typical production configuration. */
export function permissionsDoc(): string {
  const config = new Config(
    { LOG_FILE: "/var/log/oar.log", DB_HOSTNAME: "localhost" },
    "/etc/oar/oar.conf",
  );
  // Values are re-sorted after the substitution: the order of the real paths depends on where
  // the tree is installed (a checkout under /check sorts before /etc), the document must not.
  const generic = (flag: string) => {
    const [name, values] = flag.split(/=(.*)/s);
    if (values === undefined) return flag;
    const placeholders = values.split(",").map((v) =>
      v.replaceAll(Deno.execPath(), "<deno>").replaceAll(projectRoot, "<install dir>")
    );
    return `${name}=${placeholders.sort().join(",")}`;
  };
  const section = (title: string, names: readonly string[]) => {
    const out = [`## ${title}`, ""];
    for (const name of names as readonly EntryName[]) {
      out.push(`### ${name} (\`${entrySpec(name).entry}\`)`, "");
      out.push("```", ...permissionFlags(name, config).map(generic), "```", "");
      for (const r of permissionReasons(name)) out.push(`- ${r}`);
      out.push("");
    }
    return out;
  };
  return [
    "# Permissions of each module and command",
    "",
    "Generated from `lib/permissions/mod.ts` by `deno task gen:deploy` for a configuration with",
    "`DB_HOSTNAME=localhost` and `LOG_FILE=/var/log/oar.log`; the flags follow the configuration",
    "in force (hosts, ports, paths). `<deno>` is the Deno executable, `<install dir>` this",
    "directory. ZeroMQ traffic goes through libzmq (FFI), which Deno's net permission does not see:",
    "`--allow-ffi` is limited to libzmq itself.",
    "",
    ...section("Daemons", DAEMONS),
    ...section("One-shot modules (run by almighty or bipbip_commander)", ONE_SHOTS),
    ...section("On the compute nodes", NODE_MODULES),
    ...section("Commands", COMMANDS),
  ].join("\n");
}
