/**
 * What `deno task start` sets up on a fresh machine (docs/architecture.md §7): the
 * database `oar` with OAR's schema on the embedded PostgreSQL, a local cluster registered the
 * first time, and the `oar.conf` every module and command then finds under `./var`.
 */
import { join } from "node:path";
import type { ConfigValue } from "../../lib/runtime/config.ts";
import { connectUrl } from "../../lib/db/client.ts";
import type { EmbeddedPg } from "./postgres.ts";
import { createSchema } from "../../lib/db/schema.ts";
import { addResource } from "../../lib/resource/resources.ts";

export interface ClusterShape {
  hosts: number;
  coresPerHost: number;
}

export const DEFAULT_CLUSTER: ClusterShape = { hosts: 4, coresPerHost: 4 };

/** The property columns OAR sites use for the hierarchy `resource_id,network_address,cpu,core`. */
const PROPERTY_COLUMNS = ["host varchar(255)", "cpu integer", "core integer"];

/** Creates the database and schema if needed; registers the cluster into an empty one. */
export async function prepareEmbeddedDatabase(
  pg: EmbeddedPg,
  dbName: string,
  cluster: ClusterShape,
): Promise<{ created: boolean; registered: number }> {
  const admin = connectUrl(pg.url("postgres"), { max: 1 });
  let created = false;
  try {
    const [exists] = await admin`SELECT 1 FROM pg_database WHERE datname = ${dbName}`;
    if (!exists) {
      await admin.unsafe(`CREATE DATABASE "${dbName.replaceAll('"', '""')}"`);
      created = true;
    }
  } finally {
    await admin.end();
  }
  const sql = connectUrl(pg.url(dbName), { max: 1 });
  try {
    await createSchema(sql);
    for (const col of PROPERTY_COLUMNS) {
      await sql.unsafe(`ALTER TABLE resources ADD COLUMN IF NOT EXISTS ${col}`);
    }
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM resources`;
    let registered = 0;
    if (n === 0) {
      let cpu = 0;
      let core = 0;
      for (let h = 1; h <= cluster.hosts; h++) {
        const host = `node${h}`;
        cpu++;
        for (let c = 0; c < cluster.coresPerHost; c++) {
          core++;
          await addResource(sql, {
            network_address: host,
            properties: { host, cpu, core, cpuset: String(c) },
          });
          registered++;
        }
      }
    }
    return { created, registered };
  } finally {
    await sql.end();
  }
}

/**
 * The oar.conf of the embedded default. Ports follow OAR's layout from `portBase` (6666): the
 * proxy on base, almighty on base+4, bipbip_commander on base+5, greta on base+6.
 */
export function embeddedConfig(
  pg: Pick<EmbeddedPg, "socketDir" | "port" | "superuser">,
  dbName: string,
  varDir: string,
  portBase = 6666,
): Record<string, ConfigValue> {
  return {
    DB_TYPE: "Pg",
    DB_HOSTNAME: pg.socketDir,
    DB_PORT: pg.port,
    DB_BASE_NAME: dbName,
    DB_BASE_LOGIN: pg.superuser,
    DB_BASE_PASSWD: "",
    SERVER_HOSTNAME: "localhost",
    SERVER_PORT: portBase,
    APPENDICE_SERVER_PORT: portBase + 4,
    BIPBIP_COMMANDER_SERVER: "localhost",
    BIPBIP_COMMANDER_PORT: portBase + 5,
    GRETA_SERVER: "localhost",
    GRETA_PORT: portBase + 6,
    LOG_FILE: ":stderr:",
    LOG_LEVEL: 2,
    OAREXEC_LAUNCHER: "local",
    OAREXEC_DIRECTORY: join(varDir, "oarexec"),
    OAR_RUNTIME_DIRECTORY: join(varDir, "run"),
    COMMAND_SERVER_SOCKET: join(varDir, "oar-commands.sock"),
    HIERARCHY_LABELS: "resource_id,network_address,cpu,core",
  };
}

export function renderConfig(values: Record<string, ConfigValue>, header: string): string {
  const lines = [`# ${header}`];
  for (const [k, v] of Object.entries(values)) lines.push(`${k}="${v}"`);
  return lines.join("\n") + "\n";
}
