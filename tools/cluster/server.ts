/**
 * What the server needs to use a cluster in a box (tools/cluster/netns.ts): the oar.conf keys of
 * the ssh launcher, and the hosts' resources.
 */
import { Config, type ConfigValue, parseOarConf } from "../../lib/runtime/config.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { denoRunArgs } from "../../lib/permissions/mod.ts";
import { addResource } from "../../lib/resource/resources.ts";
import { type ClusterInfo, openSshCmd, shellWord } from "./netns.ts";

/**
 * The keys to add to the server's oar.conf (`confPath`): the ssh launcher with the cluster's
 * key, the server address the hosts can reach, and the command ssh runs on a host: oarexec
 * from this tree, with exactly the flags lib/permissions/mod.ts gives it (as its compiled artifact
 * would have) and the same oar.conf (the hosts share this machine's files).
 */
export async function clusterConfig(
  info: ClusterInfo,
  confPath: string,
): Promise<Record<string, ConfigValue>> {
  const keys: Record<string, ConfigValue> = {
    OAREXEC_LAUNCHER: "ssh",
    OPENSSH_CMD: openSshCmd(info),
    SERVER_HOSTNAME: info.serverAddress,
  };
  const values = parseOarConf(await Deno.readTextFile(confPath), confPath);
  for (const [k, v] of Object.entries(keys)) values.set(k, v);
  const config = new Config(values, confPath);
  const argv = [Deno.execPath(), ...denoRunArgs("oarexec", config)];
  const cmd = [`OARCONFFILE=${shellWord(confPath)}`, ...argv.map(shellWord)].join(" ");
  // oar.conf drops what follows a '#', and its value quotes would take a trailing quote.
  if (cmd.includes("#") || /['"]$/.test(cmd)) {
    throw new Error(`cannot write the oarexec command in oar.conf: ${cmd}`);
  }
  keys.OAREXEC_REMOTE_CMD = cmd;
  return keys;
}

const BEGIN = (prefix: string) => `# cluster ${prefix}: begin (removed by cluster:down)`;
const END = (prefix: string) => `# cluster ${prefix}: end`;

/** Appends `keys` to the oar.conf `file`, between marks naming the cluster. */
export async function appendClusterBlock(
  file: string,
  prefix: string,
  keys: Record<string, ConfigValue>,
): Promise<void> {
  const block = `\n${BEGIN(prefix)}\n${confLines(keys)}${END(prefix)}\n`;
  await Deno.writeTextFile(file, block, { append: true });
}

/** Removes the block appendClusterBlock wrote (the rest of the file is kept as it is). */
export async function removeClusterBlock(file: string, prefix: string): Promise<boolean> {
  const text = await Deno.readTextFile(file);
  const begin = text.indexOf(`\n${BEGIN(prefix)}\n`);
  const endMark = `${END(prefix)}\n`;
  const end = text.indexOf(endMark, begin);
  if (begin < 0 || end < 0) return false;
  await Deno.writeTextFile(file, text.slice(0, begin) + text.slice(end + endMark.length));
  return true;
}

/** oar.conf lines for `keys`. */
export function confLines(keys: Record<string, ConfigValue>): string {
  return Object.entries(keys).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n";
}

/**
 * Registers one resource per core of each host (network_address = the host's address, and the
 * site properties host, cpu, core and cpuset where those columns exist). With `replace`, the
 * resources already there are removed first — only allowed on a database without jobs (the
 * embedded default's node1..nodeN, for instance). Returns the number of resources added.
 */
export async function registerClusterResources(
  sql: Queryable,
  info: ClusterInfo,
  opts: { replace?: boolean } = {},
): Promise<number> {
  if (opts.replace) {
    const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs`;
    if (n > 0) throw new Error("resources can only be replaced in a database without jobs");
    await sql`DELETE FROM resource_logs`;
    await sql`DELETE FROM resources`;
  }
  const cols = new Set(
    (await sql<{ c: string }[]>`
      SELECT column_name AS c FROM information_schema.columns
      WHERE table_name = 'resources' AND table_schema = current_schema()`).map((r) => r.c),
  );
  const [{ cpu0, core0 }] = cols.has("cpu") && cols.has("core")
    ? await sql<{ cpu0: number; core0: number }[]>`
        SELECT coalesce(max(cpu), 0)::int AS cpu0, coalesce(max(core), 0)::int AS core0
        FROM resources`
    : [{ cpu0: 0, core0: 0 }];
  let added = 0;
  for (const h of info.hosts) {
    for (let c = 0; c < info.cores; c++) {
      const props: Record<string, string | number> = {};
      if (cols.has("host")) props.host = h.name;
      if (cols.has("cpu")) props.cpu = cpu0 + h.index;
      if (cols.has("core")) props.core = core0 + (h.index - 1) * info.cores + c + 1;
      if (cols.has("cpuset")) props.cpuset = String(c);
      await addResource(sql, { network_address: h.name, properties: props });
      added++;
    }
  }
  return added;
}
