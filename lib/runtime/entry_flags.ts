/**
 * How an entry is run, without the permission table: the command (ChildCommand), the Deno flag
 * set the table (lib/permissions/mod.ts) fills, and what every entry is granted. The node program
 * builds its own command from these (lib/exec/oarexec_command.ts): it carries no table.
 */
import { type Config, systemConfigFile } from "./config.ts";
import { joinPath, varDir } from "./paths.ts";

/** A program to run: its path, arguments and the environment variables it is given. */
export interface ChildCommand {
  program: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Environment variables every entry may read: where the configuration and var dir are
 * (OAR_SYSTEM_CONF too, so that an entry looks for the same system file as its parent did).
 */
export const BASE_ENV = [
  "OARCONFFILE",
  "OAR_SYSTEM_CONF",
  "OAR_VAR_DIR",
  "OAR_SUPERVISED",
  "OAR_STANDBY",
];

export class FlagSet {
  readonly #sets = new Map<string, Set<string>>();
  readonly #all = new Set<string>();

  add(kind: string, ...values: string[]): void {
    const set = this.#sets.get(kind) ?? new Set<string>();
    for (const v of values) if (v !== "") set.add(v);
    this.#sets.set(kind, set);
  }

  /** Grants a whole permission (no list): used where the target cannot be known ahead. */
  all(kind: string): void {
    this.#all.add(kind);
  }

  /** Merges flags in Deno's `--allow-x=a,b` form. */
  addFlags(flags: string[]): void {
    for (const f of flags) {
      const m = /^--allow-([a-z]+)(?:=(.*))?$/.exec(f);
      if (!m) throw new Error(`unexpected flag ${f}`);
      if (m[2] === undefined) this.all(m[1]);
      else this.add(m[1], ...m[2].split(","));
    }
  }

  render(): string[] {
    const kinds = [...new Set([...this.#sets.keys(), ...this.#all])].sort();
    const flags: string[] = [];
    for (const k of kinds) {
      const values = [...(this.#sets.get(k) ?? [])].sort();
      // An empty list would read as "nothing" to us but as nothing at all to Deno: leave it out.
      if (this.#all.has(k)) flags.push(`--allow-${k}`);
      else if (values.length > 0) flags.push(`--allow-${k}=${values.join(",")}`);
    }
    return flags;
  }
}

/** Config file the children read; granted explicitly so nothing else under /etc is readable. */
function configFiles(config: Config): string[] {
  return config.source ? [config.source] : [systemConfigFile(), joinPath(varDir(), "oar.conf")];
}

/** A flag set with what every entry is granted: its configuration, BASE_ENV, LOG_FILE. */
export function baseFlagSet(config: Config): FlagSet {
  const f = new FlagSet();
  f.add("env", ...BASE_ENV);
  f.add("read", ...configFiles(config));
  const logFile = config.str("LOG_FILE");
  if (logFile !== "" && logFile !== ":stderr:") f.add("write", logFile);
  return f;
}

/** Where oarexec sends its reports and bipbip_commander their acknowledgements. */
export function serverPortAddress(config: Config): string {
  return `${config.str("SERVER_HOSTNAME")}:${config.int("SERVER_PORT")}`;
}

function usesLocalLauncherConfig(config: Config): boolean {
  return config.str("OAREXEC_LAUNCHER").trim().toLowerCase() === "local";
}

/**
 * Where the appendice proxy listens (issue 20): SERVER_BIND_ADDRESS, else loopback with the
 * local launcher (every oarexec and command runs on this host) and every interface with ssh.
 */
export function serverBindAddress(config: Config): string {
  const set = config.str("SERVER_BIND_ADDRESS").trim();
  if (set) return set;
  return usesLocalLauncherConfig(config) ? "127.0.0.1" : "0.0.0.0";
}

/**
 * The peer addresses the appendice proxy serves (issue 20), or null for any: SERVER_ALLOWED_HOSTS
 * (IP literals; `localhost` means loopback), else loopback with the local launcher, else any.
 */
export function serverAllowedHosts(config: Config): ((addr: string) => boolean) | null {
  const list = config.str("SERVER_ALLOWED_HOSTS").split(/[\s,]+/).filter((s) => s !== "");
  if (list.length === 0 && !usesLocalLauncherConfig(config)) return null;
  const loopback = list.length === 0 || list.includes("localhost");
  const set = new Set(list.map(normalizeAddr));
  return (addr) => {
    const a = normalizeAddr(addr);
    return set.has(a) || (loopback && isLoopback(a));
  };
}

function normalizeAddr(a: string): string {
  const s = a.trim().toLowerCase();
  return s.startsWith("::ffff:") && s.includes(".") ? s.slice(7) : s;
}

function isLoopback(a: string): boolean {
  return a === "::1" || /^127\.\d+\.\d+\.\d+$/.test(a);
}
