/**
 * `deno task cluster:up` / `cluster:down`: a cluster of compute hosts on this machine (network
 * namespaces, each with its own sshd on port 6667; tools/cluster/netns.ts), for trying the ssh
 * launcher and multi-host jobs without real nodes. Needs root and iproute2.
 *
 *   up   [--hosts N] [--cores C] [--dir D] [--conf FILE [--register]]
 *        builds the cluster, records it in D (default ./var/cluster), prints its hosts and the
 *        oar.conf keys that make the server use it; with --conf appends those keys to FILE
 *        (down takes them out again), and with --register also registers the hosts'
 *        resources in FILE's database (the server's database must be up; an empty one's
 *        default resources are replaced).
 *   down [--dir D]
 *        removes everything the cluster in D made: sshds, job processes, namespaces, links.
 */
import { parseArgs } from "node:util";
import { readConfigFile } from "../lib/runtime/config.ts";
import { connect } from "../lib/db/client.ts";
import { joinPath, varDir } from "../lib/runtime/paths.ts";
import {
  clusterDown,
  clusterUp,
  readCluster,
  saveCluster,
  unavailableReason,
} from "./cluster/netns.ts";
import {
  appendClusterBlock,
  clusterConfig,
  confLines,
  registerClusterResources,
  removeClusterBlock,
} from "./cluster/server.ts";

const USAGE =
  `usage: deno task cluster:up [--hosts N] [--cores C] [--dir D] [--conf FILE [--register]]
       deno task cluster:down [--dir D]`;

export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  let opts;
  try {
    opts = parseArgs({
      args: rest,
      options: {
        hosts: { type: "string", default: "4" },
        cores: { type: "string", default: "4" },
        dir: { type: "string", default: joinPath(varDir(), "cluster") },
        conf: { type: "string" },
        register: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts.help || (verb !== "up" && verb !== "down")) {
    (opts.help ? console.log : console.error)(USAGE);
    return opts.help ? 0 : 2;
  }
  const why = await unavailableReason();
  if (why) {
    console.error(`oar-deno cluster: not available here: ${why}`);
    return 1;
  }
  if (verb === "down") {
    try {
      const info = await readCluster(opts.dir);
      await clusterDown(info);
      console.error(`oar-deno cluster: ${info.prefix} (${info.hosts.length} hosts) removed`);
      if (
        info.confFile && await removeClusterBlock(info.confFile, info.prefix).catch(() => false)
      ) {
        console.error(
          `oar-deno cluster: its keys were removed from ${info.confFile} (restart the server; ` +
            "resources registered for its hosts stay: set them Dead with oarnodesetting)",
        );
      }
      return 0;
    } catch (e) {
      console.error(`oar-deno cluster: ${(e as Error).message}`);
      return 1;
    }
  }

  const hosts = Number(opts.hosts);
  const cores = Number(opts.cores);
  if (!Number.isInteger(hosts) || hosts < 1 || !Number.isInteger(cores) || cores < 1) {
    console.error(`--hosts and --cores take positive integers\n${USAGE}`);
    return 2;
  }
  if (opts.register && !opts.conf) {
    console.error(`--register needs --conf\n${USAGE}`);
    return 2;
  }
  let info;
  try {
    info = await clusterUp({ hosts, cores, dir: opts.dir });
  } catch (e) {
    console.error(`oar-deno cluster: ${(e as Error).message}`);
    return 1;
  }
  try {
    console.log(`cluster ${info.prefix} in ${info.dir}: ${hosts} hosts × ${cores} cores`);
    for (const h of info.hosts) {
      console.log(`  ${h.name}  (netns ${h.netns}; shell: ip netns exec ${h.netns} bash)`);
    }
    console.log(`the hosts reach the server at ${info.serverAddress}`);
    if (opts.conf) {
      const keys = await clusterConfig(info, opts.conf);
      info.confFile = opts.conf;
      await saveCluster(info);
      await appendClusterBlock(opts.conf, info.prefix, keys);
      console.log(`ssh launcher keys appended to ${opts.conf} (restart the server to use them)`);
      if (opts.register) {
        const sql = connect(readConfigFile(opts.conf), { max: 1 });
        try {
          const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs`;
          const added = await registerClusterResources(sql, info, { replace: n === 0 });
          console.log(`${added} resources registered${n === 0 ? " (replacing the others)" : ""}`);
        } finally {
          await sql.end();
        }
      }
    } else {
      console.log("oar.conf keys (for the server's oar.conf, with OARCONFFILE=<that file>):");
      // Computed against an empty file, whose name then stands for the server's oar.conf.
      const tmp = await Deno.makeTempFile({ prefix: "oar-cluster-conf-" });
      try {
        const keys = await clusterConfig(info, tmp);
        console.log(confLines(keys).replaceAll(tmp, "<oar.conf>"));
      } finally {
        await Deno.remove(tmp);
      }
      console.log(
        `resources: deno task oarnodesetting -a -h <host> -p cpu=.. -p core=.. (one per core)`,
      );
    }
    console.log(`take it down with: deno task cluster:down --dir ${info.dir}`);
    return 0;
  } catch (e) {
    console.error(`oar-deno cluster: ${(e as Error).message}; taking the cluster down`);
    await clusterDown(info).catch(() => {});
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
