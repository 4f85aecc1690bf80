/**
 * Runs our modules and commands as real child processes, each with exactly its permission flags
 * (lib/permissions/mod.ts) and a given oar.conf, and makes sure every one is stopped at the end.
 */
import { type ConfigValue, readConfigFile } from "../../lib/runtime/config.ts";
import { denoRunArgs, type EntryName } from "../../lib/permissions/mod.ts";

export interface Running {
  child: Deno.ChildProcess;
  /** stdout+stderr collected so far (decoded). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Variables of the test process's own environment that would point a child at another OAR:
 * an admin's exported OARCONFFILE, a quick start's OAR_VAR_DIR, an installed OAR_COMMAND_SOCKET...
 * A child never inherits them (Deno.Command merges `env` into ours unless clearEnv).
 */
const FOREIGN_ENV = [
  "OARCONFFILE",
  "OAR_SYSTEM_CONF",
  "OAR_VAR_DIR",
  "OAR_COMMAND_SOCKET",
  "OAR_VERBOSE",
  "OAR_SUPERVISED",
  "OAR_STANDBY",
  "OARDO_USER",
];

/**
 * What the system configuration path is for every child of a test: a file that cannot exist, so
 * that nothing a test runs falls back to the machine's /etc/oar/oar.conf (lib/runtime/config.ts).
 */
export const NO_SYSTEM_CONF = "/nonexistent/oar-deno-tests/oar.conf";

/**
 * Options for a test's child process: the test process's environment without FOREIGN_ENV, no
 * system configuration, NO_COLOR, and then `vars` (typically OARCONFFILE or OAR_VAR_DIR).
 */
export function childEnv(
  vars: Record<string, string> = {},
): { env: Record<string, string>; clearEnv: true } {
  const env = Deno.env.toObject();
  for (const k of FOREIGN_ENV) delete env[k];
  return {
    env: { ...env, OAR_SYSTEM_CONF: NO_SYSTEM_CONF, NO_COLOR: "1", ...vars },
    clearEnv: true,
  };
}

/** Writes an oar.conf with these keys into a fresh temp dir; returns its path. */
export async function writeConf(values: Record<string, ConfigValue>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "oar-test-conf-" });
  const path = `${dir}/oar.conf`;
  const text = Object.entries(values).map(([k, v]) => `${k}="${v}"`).join("\n") + "\n";
  await Deno.writeTextFile(path, text);
  return path;
}

/** Starts an entry (module or command) with its own flags under the config file `conf`. */
export function spawnEntry(
  name: EntryName,
  conf: string,
  args: string[] = [],
  opts: { stdin?: "piped" | "null"; env?: Record<string, string> } = {},
): Running {
  const config = readConfigFile(conf);
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(name, config, args),
    ...childEnv({ OARCONFFILE: conf, ...opts.env }),
    stdin: opts.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let status: Promise<Deno.CommandStatus> | null = null;
  const stop = (graceMs = 5000) => {
    status ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited already */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited already */ }
      }, graceMs);
      const s = await child.status;
      clearTimeout(timer);
      // A grandchild may still hold the pipes: don't wait for it forever.
      let cap: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([drained, new Promise((r) => (cap = setTimeout(r, 2000)))]);
      clearTimeout(cap);
      return s;
    })();
    return status;
  };
  return {
    child,
    output: () => out,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** Runs an entry to completion; returns its exit code and output. */
export async function runEntry(
  name: EntryName,
  conf: string,
  args: string[] = [],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const config = readConfigFile(conf);
  const child = new Deno.Command(Deno.execPath(), {
    args: denoRunArgs(name, config, args),
    ...childEnv({ OARCONFFILE: conf, ...opts.env }),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const r = await child.output();
  const d = new TextDecoder();
  return { code: r.code, stdout: d.decode(r.stdout), stderr: d.decode(r.stderr) };
}

/** Polls `probe` until it returns a value other than undefined/false, or fails at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}
