/**
 * What `deno task start` sets up on a fresh machine (docs/architecture.md §7): the database
 * `oar` with OAR's schema on the embedded PostgreSQL, owned by the password-protected role `oar`
 * the daemons log in as, a local cluster registered the first time, and the `oar.conf` every
 * module and command then finds under `./var`.
 */
import { join } from "node:path";
import type { ConfigValue } from "../../lib/runtime/config.ts";
import { connectTarget, connectUrl } from "../../lib/db/client.ts";
import {
  databaseOwner,
  DEFAULT_OWNER as OWNER,
  ensureOarRoles,
  ensureOwnedDatabase,
  generatePassword,
  grantReadOnly,
} from "../../lib/db/roles.ts";
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

/** The role and password the daemons and the command server log in with (DB_BASE_LOGIN/PASSWD). */
export interface DbLogin {
  login: string;
  password: string;
}

export interface PreparedDatabase extends DbLogin {
  created: boolean;
  registered: number;
  /** True when `registered` replaced an earlier cluster (opts.reshape on a database with no job). */
  reshaped: boolean;
  /**
   * True for a database made by an earlier version, owned by the superuser: it is left as it
   * was, and `login` is the superuser (trusted over the socket, no password).
   */
  superuserDatabase: boolean;
}

/**
 * Creates the owner role `oar` (lib/db/roles.ts) with `opts.password` (a new random one when
 * not given; the caller keeps it in oar.conf and passes it back next time), the database owned
 * by it, and, connected as `oar` so that it owns every table and sequence, the schema, the
 * resource property columns and the cluster (into an empty database); then lets `oar_ro` read.
 * A database of an earlier version, owned by the superuser, is only completed as before.
 *
 * With `opts.reshape` (--hosts/--cores given explicitly), a database whose resources are not
 * that cluster gets it instead, provided it holds no job at all (a job's resources, accounting
 * and logs name resource ids); otherwise it throws, saying why.
 */
export async function prepareEmbeddedDatabase(
  pg: EmbeddedPg,
  dbName: string,
  cluster: ClusterShape,
  opts: { password?: string; reshape?: boolean } = {},
): Promise<PreparedDatabase> {
  const admin = connectUrl(pg.url("postgres"), { max: 1 });
  let created = false;
  let login: DbLogin;
  let superuserDatabase = false;
  try {
    const existing = await databaseOwner(admin, dbName);
    if (existing?.ownerIsSuperuser) {
      superuserDatabase = true;
      login = { login: pg.superuser, password: "" };
    } else {
      const password = opts.password ?? generatePassword();
      // Each time: sets the password again, so oar.conf and the database cannot disagree.
      await ensureOarRoles(admin, { dbName, owner: OWNER, password });
      created = (await ensureOwnedDatabase(admin, dbName, OWNER)).created;
      login = { login: OWNER, password };
    }
  } finally {
    await admin.end();
  }
  const sql = connectTarget({
    host: pg.socketDir,
    port: pg.port,
    database: dbName,
    user: login.login,
    password: login.password,
  }, { max: 1 });
  try {
    await createSchema(sql);
    for (const col of PROPERTY_COLUMNS) {
      await sql.unsafe(`ALTER TABLE resources ADD COLUMN IF NOT EXISTS ${col}`);
    }
    // The superuser's database predates the reader role: left as it was.
    if (!superuserDatabase) await grantReadOnly(sql);
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM resources`;
    let registered = 0;
    let reshaped = false;
    if (n > 0 && opts.reshape && !(await isCluster(sql, cluster))) {
      const [{ jobs }] = await sql`SELECT count(*)::int AS jobs FROM jobs`;
      if (jobs > 0) {
        throw new Error(
          `--hosts ${cluster.hosts} --cores ${cluster.coresPerHost}: the database already has ` +
            `another set of ${n} resources and holds ${jobs} job${jobs > 1 ? "s" : ""}, whose ` +
            "records name those resources, so the cluster is kept; start without --hosts/--cores, " +
            "change the resources with oarnodesetting, or remove the var directory to start afresh",
        );
      }
      // No job refers to any resource: the old set can go, ids starting again from 1.
      await sql`TRUNCATE resources, resource_logs RESTART IDENTITY`;
      reshaped = true;
    }
    if (n === 0 || reshaped) {
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
    return { created, registered, reshaped, ...login, superuserDatabase };
  } finally {
    await sql.end();
  }
}

/** True when the resources are exactly the local cluster `cluster` registers (nodeN × cores). */
async function isCluster(sql: ReturnType<typeof connectTarget>, cluster: ClusterShape) {
  const rows = await sql<{ host: string; n: number }[]>`
    SELECT network_address AS host, count(*)::int AS n FROM resources GROUP BY network_address`;
  return rows.length === cluster.hosts && rows.every((r) => {
    const h = /^node(\d+)$/.exec(r.host);
    return h !== null && Number(h[1]) >= 1 && Number(h[1]) <= cluster.hosts &&
      r.n === cluster.coresPerHost;
  });
}

/**
 * The oar.conf of the embedded default. Ports follow OAR's layout from `portBase` (6666): the
 * proxy on base, almighty on base+4, bipbip_commander on base+5, greta on base+6.
 */
export function embeddedConfig(
  pg: Pick<EmbeddedPg, "socketDir" | "port">,
  dbName: string,
  db: DbLogin,
  varDir: string,
  portBase = 6666,
): Record<string, ConfigValue> {
  return {
    DB_TYPE: "Pg",
    DB_HOSTNAME: pg.socketDir,
    DB_PORT: pg.port,
    DB_BASE_NAME: dbName,
    DB_BASE_LOGIN: db.login,
    DB_BASE_PASSWD: db.password,
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
