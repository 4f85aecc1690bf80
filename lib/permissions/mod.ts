/**
 * The permissions table: for each module and command, the Deno flags it runs with and why it
 * needs each. The same table drives `deno task <name>` (through tools/run.ts), almighty's and
 * bipbip_commander's spawns, and `deno task compile` (docs/architecture.md §2).
 *
 * Flags are computed from the configuration in force, because the hosts, ports and paths a
 * module may touch are configuration values (DB_HOSTNAME, SERVER_PORT, LOG_FILE...).
 */
import type { Config } from "../runtime/config.ts";
import { dbPermissionFlags } from "../db/target.ts";
import { joinPath, projectRoot } from "../runtime/paths.ts";
import { baseFlagSet, serverBindAddress, serverPortAddress } from "../runtime/entry_flags.ts";
import { LIBZMQ_PATH } from "../transport/zmq_path.ts";
import { agentSocketPath } from "../exec/agent_path.ts";
import { addNodeExecutionFlags } from "../exec/oarexec_command.ts";
import { usesLocalLauncher } from "../launch/local_hosts.ts";
import { LIBC_PATH } from "../transport/libc_path.ts";
import { COMMAND_ENV } from "../protocol/commands.ts";

export const DAEMONS = [
  "almighty",
  "appendice_proxy",
  "bipbip_commander",
  "greta",
  "command_server",
] as const;
export const ONE_SHOTS = [
  "meta_sched",
  "sarko",
  "finaud",
  "leon",
  "node_change_state",
  "bipbip",
] as const;
export const NODE_MODULES = ["oarexec"] as const;
export const COMMANDS = [
  "oarsub",
  "oarstat",
  "oardel",
  "oarhold",
  "oarresume",
  "oarnodes",
  "oarnodesetting",
  "oarproperty",
  "oarnotify",
  "oar-database",
] as const;

export type ModuleName = typeof DAEMONS[number] | typeof ONE_SHOTS[number];
export type EntryName = ModuleName | typeof NODE_MODULES[number] | typeof COMMANDS[number];

/** What a program needs, each with the reason shown in deploy/PERMISSIONS.md. */
type Need =
  | "db"
  | "zmq"
  | "listen_server_port"
  | "tcp_server_port"
  | "spawn_modules"
  | "ssh"
  | "notify_oarsub"
  | "server_scripts"
  | "pingchecker"
  | "node_manager"
  | "node_execution"
  | "user_identity"
  | "read_user_files"
  | "runtime_state"
  | "interactive"
  | "scheduler_files"
  | "command_server"
  | "command_client"
  | "user_lookup"
  | "db_setup";

const NEED_REASONS: Record<Need, string> = {
  command_server:
    "serves the user commands on COMMAND_SERVER_SOCKET and learns each caller from the kernel " +
    "(SO_PEERCRED through libc)",
  command_client: "sends the command line to the command server (COMMAND_SERVER_SOCKET)",
  user_lookup: "finds the caller's account (/etc/passwd, getent for NSS accounts)",
  db_setup: "reads OAR_DB_PASSWORD, the password --create-roles gives the oar role",
  db: "reads and writes OAR's database",
  zmq: "talks to almighty/bipbip_commander/greta over ZeroMQ (libzmq through FFI)",
  listen_server_port:
    "listens on SERVER_PORT (SERVER_BIND_ADDRESS) for oarsub, oardel and oarexec lines",
  tcp_server_port:
    "sends job reports (oarexec) or their acknowledgements (bipbip_commander) to SERVER_HOSTNAME:SERVER_PORT",
  spawn_modules: "starts the other modules (deno, or their artifacts in OARDIR)",
  ssh: "reaches compute nodes with OPENSSH_CMD (or starts and signals oarexec locally)",
  notify_oarsub: "writes notifications to interactive oarsub sessions (any host:port they give)",
  server_scripts: "runs the admin's server prologue/epilogue, suspend/resume and healing scripts",
  pingchecker: "runs the configured node check commands (fping, nmap, generic)",
  node_manager:
    "runs the energy-saving node-manager commands; keeps its state in OAR_RUNTIME_DIRECTORY",
  node_execution: "runs the job as its user: shell, prologue/epilogue, node and output files",
  user_identity: "reads who runs the command (uid, user name)",
  read_user_files: "reads job scripts and parameter files named by the user",
  interactive:
    "oarsub -I/-C: listens for its job's notifications and opens the job's shell (sh here, " +
    "or OPENSSH_CMD to the head node)",
  runtime_state:
    "remembers between runs which jobs' oarexecs were seen gone (a file in OAR_RUNTIME_DIRECTORY)",
  scheduler_files:
    "reads QUOTAS_CONF_FILE (QUOTAS=yes) and PRIORITY_CONF_FILE (JOB_PRIORITY=MULTIFACTOR)",
};

interface EntrySpec {
  /** Path of the entry point, relative to the project root. */
  entry: string;
  needs: Need[];
}

const MODULE_NEEDS: Record<EntryName, Need[]> = {
  almighty: ["zmq", "spawn_modules"],
  // db: reads job challenges (an oarexec report with a bad one is dropped before it costs a bipbip
  // run) and writes one BIPBIP_CHALLENGE event per job and minute for them (issue 20).
  appendice_proxy: ["db", "zmq", "listen_server_port"],
  // tcp_server_port: acknowledges oarexec reports to the appendice proxy (issue 11).
  bipbip_commander: ["zmq", "spawn_modules", "tcp_server_port"],
  greta: ["db", "zmq", "node_manager"],
  // ssh: a besteffort job is asked to checkpoint before it is killed (docs/modules.md §11 step 7).
  meta_sched: ["db", "zmq", "notify_oarsub", "scheduler_files", "ssh"],
  sarko: ["db", "zmq", "ssh", "runtime_state"],
  finaud: ["db", "zmq", "pingchecker"],
  leon: ["db", "zmq", "ssh", "pingchecker", "notify_oarsub", "server_scripts"],
  node_change_state: ["db", "zmq", "ssh", "notify_oarsub", "server_scripts"],
  bipbip: ["db", "zmq", "ssh", "pingchecker", "notify_oarsub", "server_scripts"],
  oarexec: ["node_execution", "tcp_server_port"],
  // The commands' privileged half: everything the commands did with the database, and more.
  command_server: ["db", "zmq", "ssh", "command_server", "user_lookup"],
  // The commands as users run them hold no credentials: they only reach the command server.
  oarsub: ["command_client", "read_user_files", "interactive"],
  oarstat: ["command_client"],
  oardel: ["command_client"],
  oarhold: ["command_client"],
  oarresume: ["command_client"],
  oarnodes: ["command_client"],
  oarnodesetting: ["command_client"],
  oarproperty: ["command_client"],
  oarnotify: ["command_client"],
  "oar-database": ["db", "db_setup"],
};

export const ALL_ENTRIES: readonly EntryName[] = [
  ...DAEMONS,
  ...ONE_SHOTS,
  ...NODE_MODULES,
  ...COMMANDS,
];

export function isEntryName(s: string): s is EntryName {
  return (ALL_ENTRIES as readonly string[]).includes(s);
}

export function entrySpec(name: EntryName): EntrySpec {
  const dir = (COMMANDS as readonly string[]).includes(name) ? "cli" : "modules";
  return { entry: `${dir}/${name}/main.ts`, needs: MODULE_NEEDS[name] };
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** The first word of a command line (the program a module must be allowed to run). */
export function programOf(commandLine: string): string {
  return commandLine.trim().split(/\s+/)[0] ?? "";
}

/**
 * The Deno permission flags of an entry under a configuration. Unknown needs cannot happen: the
 * table is exhaustive over `Need`.
 */
export function permissionFlags(name: EntryName, config: Config): string[] {
  const f = baseFlagSet(config);
  const serverPort = config.int("SERVER_PORT");
  for (const need of MODULE_NEEDS[name]) {
    switch (need) {
      case "db":
        f.addFlags(dbPermissionFlags(config));
        break;
      case "zmq":
        f.add("ffi", LIBZMQ_PATH);
        f.add("env", "OAR_LIBZMQ");
        break;
      case "listen_server_port":
        f.add("net", `${serverBindAddress(config)}:${serverPort}`);
        break;
      case "tcp_server_port":
        f.add("net", serverPortAddress(config));
        break;
      case "spawn_modules": {
        const oardir = config.str("OARDIR");
        if (oardir) f.add("run", ...[...DAEMONS, ...ONE_SHOTS].map((m) => joinPath(oardir, m)));
        else f.add("run", Deno.execPath());
        // Children lead their own process group, so a kill reaches their children too.
        f.add("run", "setsid");
        // Children are started with OARCONFFILE and their own flags; they need to be found.
        f.add("read", projectRoot);
        break;
      }
      case "ssh":
        // ssh launcher: OPENSSH_CMD; local launcher: oarexec through setsid (its own session),
        // and signals through sh.
        f.add("run", programOf(config.str("OPENSSH_CMD")), Deno.execPath(), "setsid", "sh");
        // The local launcher in compiled mode runs oarexec's artifact.
        if (config.str("OARDIR")) f.add("run", joinPath(config.str("OARDIR"), "oarexec"));
        // bipbip names this host in the report address when SERVER_HOSTNAME is local.
        f.add("sys", "hostname");
        // The local launcher's oarexec agent listens on a unix socket there.
        if (usesLocalLauncher(config)) {
          f.add("read", config.str("OAREXEC_DIRECTORY"));
          f.add("write", config.str("OAREXEC_DIRECTORY"));
          f.add("net", `unix:${agentSocketPath(config)}`);
        }
        break;
      case "notify_oarsub":
        // oarsub -I listens on whatever host:port it chose; the target is only known per job.
        f.all("net");
        break;
      case "server_scripts":
        for (
          const key of [
            "SERVER_PROLOGUE_EXEC_FILE",
            "SERVER_EPILOGUE_EXEC_FILE",
            "JUST_AFTER_SUSPEND_EXEC_FILE",
            "JUST_BEFORE_RESUME_EXEC_FILE",
          ]
        ) f.add("run", config.str(key));
        f.add("run", config.str("SUSPECTED_HEALING_EXEC_FILE"));
        break;
      case "pingchecker":
        for (
          const key of [
            "PINGCHECKER_GENERIC_COMMAND",
            "PINGCHECKER_FPING_COMMAND",
            "PINGCHECKER_NMAP_COMMAND",
          ]
        ) f.add("run", programOf(config.str(key)));
        // The built-in check connects to each node's ssh port (docs/differences.md §2).
        f.all("net");
        break;
      case "node_manager":
        f.add("run", "sh", "setsid");
        // Its saved state (greta_status.json) lives there.
        f.add("read", config.str("OAR_RUNTIME_DIRECTORY"));
        f.add("write", config.str("OAR_RUNTIME_DIRECTORY"));
        break;
      case "node_execution":
        addNodeExecutionFlags(f, config);
        break;
      case "command_server": {
        const socket = config.str("COMMAND_SERVER_SOCKET");
        f.add("ffi", LIBC_PATH);
        f.add("read", dirname(socket));
        f.add("write", dirname(socket));
        f.add("net", `unix:${socket}`);
        break;
      }
      case "command_client": {
        const socket = config.str("COMMAND_SERVER_SOCKET");
        f.add("read", dirname(socket));
        f.add("write", socket);
        f.add("net", `unix:${socket}`);
        f.add("env", "OAR_COMMAND_SOCKET", ...COMMAND_ENV);
        f.add("sys", "hostname");
        break;
      }
      case "db_setup":
        f.add("env", "OAR_DB_PASSWORD");
        break;
      case "user_lookup":
        f.add("read", "/etc/passwd");
        f.add("run", "getent");
        break;
      case "runtime_state":
        f.add("read", config.str("OAR_RUNTIME_DIRECTORY"));
        f.add("write", config.str("OAR_RUNTIME_DIRECTORY"));
        break;
      case "user_identity":
        f.add("sys", "uid", "gid", "hostname");
        f.add("env", "USER", "LOGNAME", "OARDO_USER", "HOME");
        f.add("run", "id");
        break;
      case "read_user_files":
        f.all("read");
        break;
      case "scheduler_files":
        // Read each round, only when the feature that needs them is on.
        if (config.bool("QUOTAS")) f.add("read", config.str("QUOTAS_CONF_FILE"));
        if (config.str("JOB_PRIORITY").trim().toUpperCase() === "MULTIFACTOR") {
          f.add("read", config.str("PRIORITY_CONF_FILE"));
        }
        break;
      case "interactive":
        // The notification socket: every address, a port the system picks (info_type).
        f.add("net", "0.0.0.0");
        // The job's shell: sh on this host (local launcher), or ssh to the head node; getent
        // finds the user's login shell for NSS accounts. The job key goes to a file in /tmp.
        f.add("run", "sh", "getent", programOf(config.str("OPENSSH_CMD")));
        f.add("write", "/tmp");
        // Passed on to the user's shell.
        f.add("env", "PATH", "TERM", "LANG", "LC_ALL", "DISPLAY");
        break;
    }
  }
  return f.render();
}

/** Why an entry needs what it has: for deploy/PERMISSIONS.md. */
export function permissionReasons(name: EntryName): string[] {
  return [
    "reads its configuration file and OARCONFFILE/OAR_VAR_DIR, writes LOG_FILE",
    ...MODULE_NEEDS[name].map((n) => NEED_REASONS[n]),
  ];
}

/** The command line that runs an entry from source with its flags. */
export function denoRunArgs(name: EntryName, config: Config, args: string[] = []): string[] {
  return [
    "run",
    "--quiet",
    "--no-prompt",
    ...permissionFlags(name, config),
    joinPath(projectRoot, entrySpec(name).entry),
    ...args,
  ];
}
