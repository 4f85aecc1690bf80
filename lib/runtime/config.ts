/**
 * OAR's configuration: `KEY=value` lines in an `oar.conf`. Which file is in force is decided here
 * and nowhere else (`chooseConfigFile`): `OARCONFFILE` always wins; then installed programs and
 * modules read the system file (`/etc/oar/oar.conf`), while `deno task <entry>` in the project
 * tree (tools/run.ts) first takes the quick start's `./var/oar.conf`. One table of defaults
 * (docs/modules.md §14) lives here and nowhere else; every module reads its keys through the
 * typed getters.
 */
import { canRead, envGet } from "./env.ts";
import { embeddedConfigFile } from "./paths.ts";

export type ConfigValue = string | number;

interface Default {
  value: ConfigValue;
  /** One line for the generated sample oar.conf. */
  doc: string;
}

/** Every key oar-deno reads, with its default and its meaning. */
export const DEFAULTS: Readonly<Record<string, Default>> = {
  // Database
  DB_TYPE: { value: "Pg", doc: "database type; only PostgreSQL (Pg) is supported" },
  DB_HOSTNAME: { value: "localhost", doc: "database host, or a directory holding its unix socket" },
  DB_PORT: { value: 5432, doc: "database port" },
  DB_BASE_NAME: { value: "oar", doc: "database name" },
  DB_BASE_LOGIN: { value: "oar", doc: "database user (read-write)" },
  DB_BASE_PASSWD: { value: "", doc: "database password" },
  // Server topology
  SERVER_HOSTNAME: { value: "localhost", doc: "host running almighty and the appendice proxy" },
  SERVER_PORT: { value: 6666, doc: "TCP port of the appendice proxy (oarsub, oarexec reports)" },
  SERVER_BIND_ADDRESS: {
    value: "",
    doc:
      "address the appendice proxy listens on (empty: 127.0.0.1 with the local launcher, else 0.0.0.0)",
  },
  SERVER_ALLOWED_HOSTS: {
    value: "",
    doc:
      "IP addresses allowed on SERVER_PORT, space or comma separated (empty: loopback with the local launcher, any with ssh)",
  },
  APPENDICE_PROXY_MAX_CONNECTIONS: { value: 1024, doc: "most clients of the appendice proxy" },
  APPENDICE_PROXY_MAX_CONNECTIONS_PER_HOST: {
    value: 32,
    doc: "most clients of the appendice proxy from one address (more are closed at once)",
  },
  APPENDICE_PROXY_IDLE_TIMEOUT: {
    value: 60,
    doc:
      "seconds a proxy client may send no useful line (blank lines do not count) before it is closed",
  },
  APPENDICE_PROXY_REJECT_LOG_LINES: {
    value: 10,
    doc:
      "rejected lines the proxy logs per APPENDICE_PROXY_REJECT_LOG_INTERVAL (then a summary per host)",
  },
  APPENDICE_PROXY_REJECT_LOG_INTERVAL: {
    value: 10,
    doc: "seconds (see APPENDICE_PROXY_REJECT_LOG_LINES)",
  },
  APPENDICE_PROXY_CHECK_CHALLENGES: {
    value: "yes",
    doc:
      "the proxy checks oarexec reports' challenges in the database and drops bad ones (one event per job and minute)",
  },
  APPENDICE_SERVER_PORT: { value: 6670, doc: "ZeroMQ port where almighty pulls commands" },
  BIPBIP_COMMANDER_SERVER: { value: "localhost", doc: "host of bipbip_commander" },
  BIPBIP_COMMANDER_PORT: { value: 6671, doc: "ZeroMQ port where bipbip_commander pulls" },
  GRETA_SERVER: { value: "localhost", doc: "host of greta (energy saving)" },
  GRETA_PORT: { value: 6672, doc: "ZeroMQ port where greta pulls" },
  OARDIR: {
    value: "",
    doc: "directory of compiled module artifacts; empty runs modules from source",
  },
  // Almighty
  META_SCHED_CMD: { value: "kao", doc: "meta-scheduler command (kao is ours, meta_sched)" },
  SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: {
    value: 5,
    doc: "the longest spacing (seconds) between two scheduling rounds",
  },
  SCHEDULER_ADAPTIVE_SPACING: {
    value: 2,
    doc: "rounds are spaced by this multiple of the last round's duration, at most the above " +
      "(0: always the above, as OAR)",
  },
  FINAUD_FREQUENCY: { value: 300, doc: "seconds between two node checks (0 disables)" },
  ENERGY_SAVING_INTERNAL: { value: "no", doc: "start and supervise greta" },
  // Logging
  LOG_FILE: { value: ":stderr:", doc: "log file path, or :stderr:" },
  LOG_LEVEL: { value: 2, doc: "1 errors, 2 errors+warnings+info, 3 debug" },
  // bipbip_commander, bipbip, oarexec
  MAX_CONCURRENT_JOBS_STARTING_OR_TERMINATING: {
    value: 25,
    doc: "maximum bipbip/leon children run at once by bipbip_commander",
  },
  BIPBIP_COMMANDER_CHILD_TIMEOUT: {
    value: 1800,
    doc: "seconds before a bipbip or leon child is killed",
  },
  DETACH_JOB_FROM_SERVER: { value: 1, doc: "oarexec detaches from the launching session" },
  OPENSSH_CMD: { value: "/usr/bin/ssh -p 6667", doc: "ssh command used to reach compute nodes" },
  OAREXEC_REMOTE_CMD: {
    value: "oarexec",
    doc: "command ssh runs on the head node to start oarexec",
  },
  OAREXEC_LAUNCHER: { value: "ssh", doc: "how oarexec is started on the head node: ssh or local" },
  OAREXEC_LOCAL_HOSTS: {
    value: "",
    doc: "with the ssh launcher, hosts (space-separated) whose jobs run on this host (local)",
  },
  TIMEOUT_SSH: { value: 120, doc: "seconds allowed to remote commands (launch waits twice this)" },
  OAR_SSH_CONNECTION_TIMEOUT: { value: 120, doc: "ssh connection timeout for user notifications" },
  NODE_FILE_DB_FIELD: { value: "network_address", doc: "resource column written in the node file" },
  NODE_FILE_DB_FIELD_DISTINCT_VALUES: {
    value: "resource_id",
    doc: "one node-file line per distinct value of this column",
  },
  OAR_SSH_AUTHORIZED_KEYS_FILE: { value: ".ssh/authorized_keys", doc: "job key file on nodes" },
  OAREXEC_DIRECTORY: {
    value: "/var/lib/oar",
    doc: "oarexec's directory on nodes (node file, pid)",
  },
  OAREXEC_PID_FILE_NAME: { value: "pid_of_oarexec_for_jobId_", doc: "oarexec pid file prefix" },
  OAREXEC_LOCAL_AGENT: {
    value: "yes",
    doc: "local launcher: one resident oarexec runs every job of this host (no: one per job)",
  },
  OAREXEC_AGENT_IDLE_TIME: {
    value: 10,
    doc: "seconds the local oarexec agent stays with no job before it leaves",
  },
  OAREXEC_DEBUG_MODE: { value: 0, doc: "oarexec debug output" },
  SSH_RENDEZ_VOUS: {
    value: "oarexec is initialized and ready to do the job",
    doc: "line oarexec prints once the job is started",
  },
  PROLOGUE_EXEC_FILE: { value: "", doc: "node prologue script" },
  EPILOGUE_EXEC_FILE: { value: "", doc: "node epilogue script" },
  PROLOGUE_EPILOGUE_TIMEOUT: { value: 60, doc: "seconds allowed to node prologue/epilogue" },
  SERVER_PROLOGUE_EXEC_FILE: { value: "", doc: "server prologue script" },
  SERVER_EPILOGUE_EXEC_FILE: { value: "", doc: "server epilogue script" },
  SERVER_PROLOGUE_EPILOGUE_TIMEOUT: {
    value: 60,
    doc: "seconds allowed to server prologue/epilogue",
  },
  DEPLOY_HOSTNAME: { value: "127.0.0.1", doc: "head node of deploy jobs" },
  COSYSTEM_HOSTNAME: { value: "127.0.0.1", doc: "head node of cosystem jobs" },
  ACTIVATE_PINGCHECKER_AT_JOB_END: { value: "no", doc: "ping a job's nodes when it ends" },
  JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD: { value: "", doc: "cpuset column (empty: no cpusets)" },
  JOB_RESOURCE_MANAGER_FILE: { value: "", doc: "job resource manager script" },
  CPUSET_PATH: { value: "/oar", doc: "cpuset root path" },
  // Node checks
  PINGCHECKER_GENERIC_COMMAND: { value: "", doc: "generic node check: prints bad hosts" },
  PINGCHECKER_FPING_COMMAND: { value: "", doc: "fping node check" },
  PINGCHECKER_NMAP_COMMAND: { value: "", doc: "nmap node check" },
  CHECK_NODES_WITH_RUNNING_JOB: { value: "no", doc: "finaud also checks busy nodes" },
  // Leon and sarko
  LEON_SOFT_WALLTIME: { value: 20, doc: "seconds before a frag is re-sent" },
  LEON_WALLTIME: { value: 300, doc: "seconds before a fragged job is exterminated" },
  JOBDEL_SOFTWALLTIME: { value: "", doc: "overrides LEON_SOFT_WALLTIME when set" },
  JOBDEL_WALLTIME: { value: "", doc: "overrides LEON_WALLTIME when set" },
  DEAD_SWITCH_TIME: { value: 0, doc: "seconds Absent/Suspected before Dead (0 disables)" },
  SUSPECTED_HEALING_EXEC_FILE: { value: "", doc: "script fed suspected resources" },
  SUSPECTED_HEALING_TIMEOUT: { value: 10, doc: "seconds allowed to the healing script" },
  SUSPEND_RESUME_FILE: { value: "", doc: "suspend/resume manager script" },
  JUST_AFTER_SUSPEND_EXEC_FILE: { value: "", doc: "script run after a job is suspended" },
  JUST_BEFORE_RESUME_EXEC_FILE: { value: "", doc: "script run before a job is resumed" },
  SUSPEND_RESUME_SCRIPT_TIMEOUT: { value: 60, doc: "seconds allowed to suspend/resume scripts" },
  USERS_ALLOWED_HOLD_RESUME: { value: "yes", doc: "users may hold/resume their Running jobs" },
  // Greta
  OAR_RUNTIME_DIRECTORY: { value: "/var/lib/oar", doc: "greta's state directory" },
  ENERGY_SAVING_NODE_MANAGER_WAKEUP_TIMEOUT: { value: 900, doc: "boot timeouts (N or n:s ...)" },
  ENERGY_SAVING_NODES_KEEPALIVE: { value: "type='default':0", doc: "idle nodes kept up" },
  ENERGY_SAVING_WINDOW_FORKER_SIZE: { value: 20, doc: "node-manager commands run at once" },
  ENERGY_SAVING_WINDOW_TIMEOUT: {
    value: 120,
    doc: "seconds before a node-manager command is killed",
  },
  ENERGY_MAX_CYCLES_UNTIL_REFRESH: {
    value: 5000,
    doc: "greta cycles before it saves and restarts",
  },
  ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD: {
    value: "",
    doc: "command halting a node (host on stdin)",
  },
  ENERGY_SAVING_NODE_MANAGER_WAKE_UP_CMD: {
    value: "",
    doc: "command waking a node (host on stdin)",
  },
  ENERGY_SAVING_MODE: { value: "", doc: "metascheduler_decision_making enables energy saving" },
  SCHEDULER_NODE_MANAGER_IDLE_TIME: { value: 600, doc: "idle seconds before a node is halted" },
  SCHEDULER_NODE_MANAGER_SLEEP_TIME: { value: 600, doc: "free seconds ahead required to halt" },
  SCHEDULER_NODE_MANAGER_WAKEUP_TIME: { value: 1, doc: "seconds ahead a node is woken for a job" },
  // Meta-scheduler
  SCHEDULER_TIMEOUT: { value: 10, doc: "seconds allowed to external scheduler commands" },
  SCHEDULER_JOB_SECURITY_TIME: { value: 60, doc: "seconds kept free after each job" },
  SCHEDULER_BESTEFFORT_KILL_DURATION_BEFORE_RESERVATION: {
    value: 0,
    doc: "seconds ahead besteffort jobs are killed",
  },
  RESERVATION_WAITING_RESOURCES_TIMEOUT: { value: 300, doc: "seconds a reservation waits" },
  SCHEDULER_RESOURCE_ORDER: { value: "resource_id ASC", doc: "SQL order of the resource set" },
  HIERARCHY_LABELS: { value: "resource_id,network_address,cpu,core", doc: "resource hierarchy" },
  SCHEDULER_AVAILABLE_SUSPENDED_RESOURCE_TYPE: {
    value: "default",
    doc: "types usable when suspended",
  },
  MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND: { value: 1000, doc: "jobs scheduled per queue group" },
  JOB_PRIORITY: { value: "FIFO", doc: "FIFO, FAIRSHARE or MULTIFACTOR" },
  PRIORITY_CONF_FILE: {
    value: "/etc/oar/priority_conf.json",
    doc: 'MULTIFACTOR weights, OAR 3\'s keys in JSON, e.g. {"age_weight": 10}; unreadable: FIFO',
  },
  SCHEDULER_FAIRSHARING_WINDOW_SIZE: {
    value: 2592000,
    doc: "seconds of accounting history used for karma",
  },
  SCHEDULER_FAIRSHARING_PROJECT_TARGETS: {
    value: "{}",
    doc: "target share in % per project, {proj => 75, other => 25}",
  },
  SCHEDULER_FAIRSHARING_USER_TARGETS: { value: "{}", doc: "target share in % per user" },
  SCHEDULER_FAIRSHARING_COEF_PROJECT: { value: 0, doc: "weight of the project's used share" },
  SCHEDULER_FAIRSHARING_COEF_USER: { value: 1, doc: "weight of the user's used share" },
  SCHEDULER_FAIRSHARING_COEF_USER_ASK: { value: 1, doc: "weight of the user's asked share" },
  QUOTAS: { value: "no", doc: "enable quotas" },
  QUOTAS_CONF_FILE: {
    value: "/etc/oar/quotas_conf.json",
    doc: "quotas rules (JSON), read each round when QUOTAS=yes",
  },
  QUOTAS_ALL_NB_RESOURCES_MODE: {
    value: "default_not_dead",
    doc: "what ALL means in quotas: default resources (default) or those not Dead",
  },
  QUOTAS_WINDOW_TIME_LIMIT: {
    value: 5184000,
    doc: "temporal quotas: seconds ahead within which a job must fit (else not scheduled)",
  },
  METASCHEDULER_MODE: { value: "internal", doc: "internal (Kamelot) or external schedulers" },
  SCHEDULERS_PATH: { value: "", doc: "directory of external scheduler programs" },
  // Submission
  OARSUB_DEFAULT_RESOURCES: { value: "/resource_id=1", doc: "resources when -l gives none" },
  OARSUB_DEFAULT_WALLTIME: { value: 7200, doc: "walltime (seconds) when -l gives none" },
  OARSUB_MAX_ARRAY_SIZE: {
    value: 10000,
    doc: "most jobs in one array submission (0: no limit; root and oar are not limited)",
  },
  OARSUB_MAX_WAITING_JOBS_PER_USER: {
    value: 20000,
    doc: "most Waiting or Hold jobs one user may have (0: no limit; not root and oar)",
  },
  OARSUB_MAX_WAITING_JOBS_PER_QUEUE: {
    value: 0,
    doc: "most Waiting or Hold jobs in one queue from users (0: no limit)",
  },
  OARSUB_EXTRA_JOB_TYPES: {
    value: "",
    doc: "job types (-t) accepted beyond OAR's own, comma-separated (for site admission rules)",
  },
  JOB_USER_MIN_UID: {
    value: 1000,
    doc: "jobs of accounts below this uid (system accounts), of root and of oar are refused",
  },
  JOB_SYSTEM_USERS_ALLOWED: {
    value: "",
    doc: "comma-separated system accounts (e.g. root) whose jobs are allowed all the same",
  },
  COMMAND_SERVER_WITH_ALMIGHTY: {
    value: "yes",
    doc: "almighty starts and supervises the command server (no: it runs on its own)",
  },
  COMMAND_SERVER_SOCKET: {
    value: "/run/oar/oar-commands.sock",
    doc: "unix socket where the command server serves the user commands",
  },
  OARSUB_FORCE_JOB_KEY: { value: "no", doc: "always generate a job key" },
  OARSUB_NODES_RESOURCES: { value: "network_address", doc: "resource column that -l nodes= means" },
  // User notification
  MAIL_SMTP_SERVER: { value: "", doc: "SMTP server for --notify mail:" },
  MAIL_SENDER: { value: "", doc: "sender address for --notify mail:" },
  // Fault tolerance (issue 11)
  OAREXEC_REPORT_ACK_TIMEOUT: {
    value: 120,
    doc: "seconds oarexec waits for the server to acknowledge its end report before resending it",
  },
  OAREXEC_CHECK_INTERVAL: {
    value: 60,
    doc: "sarko checks that Running jobs' oarexecs are alive at most this often (s; 0: never)",
  },
  OAREXEC_CHECK_MIN_AGE: {
    value: 60,
    doc: "sarko checks a job's oarexec once the job has been Running this long (seconds)",
  },
  OAREXEC_LOST_GRACE: {
    value: 60,
    doc: "a Running job whose oarexec is gone this long (no report came) is ended in Error (s)",
  },
};

/** A malformed configuration: names the file and the line. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly line: number, reason: string) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = "ConfigError";
  }
}

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** OAR's value rules: drop surrounding quotes; decimal numbers become numbers. */
function convertValue(raw: string): ConfigValue {
  let v = raw.trim();
  if (v.length >= 1 && (v[0] === '"' || v[0] === "'")) v = v.slice(1);
  if (v.length >= 1 && (v.at(-1) === '"' || v.at(-1) === "'")) v = v.slice(0, -1);
  v = v.trim();
  if (NUMBER_RE.test(v)) {
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  return v;
}

/** Parses oar.conf text. Throws ConfigError for a line that is not `KEY=value`. */
export function parseOarConf(text: string, file = "oar.conf"): Map<string, ConfigValue> {
  const values = new Map<string, ConfigValue>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    // OAR drops everything after the first '#', even inside quotes.
    const hash = lines[i].indexOf("#");
    const line = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).trim();
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError(file, i + 1, `expected KEY=value, found "${line.slice(0, 80)}"`);
    }
    const key = line.slice(0, eq).trim();
    if (!KEY_RE.test(key)) {
      throw new ConfigError(file, i + 1, `invalid key "${key.slice(0, 80)}"`);
    }
    values.set(key, convertValue(line.slice(eq + 1)));
  }
  return values;
}

const YES = new Set(["yes", "y", "true", "1", "on"]);
const NO = new Set(["no", "n", "false", "0", "off", ""]);

/** Typed, read-only view of a configuration with the defaults table behind it. */
export class Config {
  readonly #values: Map<string, ConfigValue>;
  /** The file the values came from, or "" for defaults only. */
  readonly source: string;

  constructor(values: Map<string, ConfigValue> | Record<string, ConfigValue> = {}, source = "") {
    this.#values = values instanceof Map ? new Map(values) : new Map(Object.entries(values));
    this.source = source;
  }

  /** A copy with some keys replaced (tests, and modules that apply overrides). */
  with(overrides: Record<string, ConfigValue>): Config {
    const merged = new Map(this.#values);
    for (const [k, v] of Object.entries(overrides)) merged.set(k, v);
    return new Config(merged, this.source);
  }

  /** True when the key is set in the file (defaults do not count). */
  isSet(key: string): boolean {
    return this.#values.has(key);
  }

  get(key: string): ConfigValue | undefined {
    return this.#values.get(key) ?? DEFAULTS[key]?.value;
  }

  str(key: string): string {
    const v = this.get(key);
    return v === undefined ? "" : String(v);
  }

  int(key: string): number {
    const v = this.get(key);
    const n = typeof v === "number" ? v : Number(String(v ?? "").trim());
    if (!Number.isFinite(n) || String(v ?? "").trim() === "") {
      throw new ConfigError(
        this.source || "configuration",
        0,
        `${key} must be a number, not "${v}"`,
      );
    }
    return Math.trunc(n);
  }

  /** yes/no values, case-insensitive everywhere (docs/differences.md §12). */
  bool(key: string): boolean {
    const v = String(this.get(key) ?? "").trim().toLowerCase();
    if (YES.has(v)) return true;
    if (NO.has(v)) return false;
    throw new ConfigError(
      this.source || "configuration",
      0,
      `${key} must be yes or no, not "${v}"`,
    );
  }

  /** All explicitly set keys (for diagnostics). */
  entries(): [string, ConfigValue][] {
    return [...this.#values.entries()];
  }
}

/** Reads and parses one file. */
export function readConfigFile(path: string): Config {
  const text = Deno.readTextFileSync(path);
  return new Config(parseOarConf(text, path), path);
}

/**
 * Where the configuration is looked for:
 * - "installed": `OARCONFFILE`, then the system file. Installed artifacts, and modules started by
 *   almighty or start.ts (they are handed OARCONFFILE anyway).
 * - "project": `OARCONFFILE`, then the project's quick-start file (`OAR_VAR_DIR`'s `oar.conf`,
 *   `./var/oar.conf`) when it exists, then the system file: `deno task <entry>` in the project
 *   tree, so that the commands after `deno task start` use its server even on a machine where
 *   another OAR left an `/etc/oar/oar.conf`.
 */
export type ConfigOrder = "installed" | "project";

/** The configuration file in force, and the rule that chose it (for messages). */
export interface ConfigChoice {
  /** null: no file, built-in defaults only. */
  file: string | null;
  why: string;
}

/**
 * `/etc/oar/oar.conf`, unless `OAR_SYSTEM_CONF` names another path: tests cannot write /etc, and
 * must be able to put a decoy there to prove that nothing they run falls back to it.
 */
export function systemConfigFile(): string {
  return envGet("OAR_SYSTEM_CONF") || "/etc/oar/oar.conf";
}

/** Picks the configuration file for `order`. An explicit OARCONFFILE is taken even if missing. */
export function chooseConfigFile(order: ConfigOrder = "installed"): ConfigChoice {
  const fromEnv = envGet("OARCONFFILE");
  // Named on purpose: a missing or broken file is an error (loadConfig), never a fallback.
  if (fromEnv) return { file: fromEnv, why: "OARCONFFILE" };
  const candidates: ConfigChoice[] = [];
  if (order === "project") {
    candidates.push({ file: embeddedConfigFile(), why: "the project's quick-start file" });
  }
  candidates.push({ file: systemConfigFile(), why: "the system file" });
  for (const c of candidates) {
    if (c.file && canRead(c.file) && isFile(c.file)) return c;
  }
  return { file: null, why: "no oar.conf found: built-in defaults" };
}

/** The configuration file in force (see chooseConfigFile); null when there is none. */
export function findConfigFile(order: ConfigOrder = "installed"): string | null {
  return chooseConfigFile(order).file;
}

/** Deno.statSync rather than node:fs, whose import alone costs every process ~30 ms. */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The file a configuration came from, as messages name it. */
export function configLabel(config: Config): string {
  return config.source ? `configuration ${config.source}` : "no oar.conf (built-in defaults)";
}

/** Loads the configuration in force. Throws ConfigError on a malformed or unreadable file. */
export function loadConfig(order: ConfigOrder = "installed"): Config {
  return loadConfigFile(findConfigFile(order));
}

/** Loads one chosen file (null: defaults only); every failure is a ConfigError naming it. */
export function loadConfigFile(file: string | null): Config {
  if (file === null) return new Config();
  try {
    return readConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, 0, `cannot read: ${(e as Error).message}`);
  }
}
