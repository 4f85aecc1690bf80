/**
 * The whole server as `deno task start` runs it, for end-to-end tests: its own embedded
 * PostgreSQL in a fresh var directory, its own ports, the real commands through `deno task`,
 * and a stop that checks nothing is left running.
 */
import { freePort } from "./ports.ts";
import { childEnv, waitFor } from "./proc.ts";

const root = new URL("../../", import.meta.url).pathname;

/** A port base with base, base+4, base+5 and base+6 free (proxy, almighty, commander, greta). */
export async function freePortBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = await freePort();
    if (base > 65529) continue;
    const ok = [0, 4, 5, 6].every((d) => {
      try {
        Deno.listen({ hostname: "127.0.0.1", port: base + d }).close();
        return true;
      } catch {
        return false;
      }
    });
    if (ok) return base;
  }
  throw new Error("no free port range");
}

export interface TaskResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How many of the server's last output lines a failure to start shows. */
const LOG_TAIL_LINES = 40;

export class TestServer {
  #child: Deno.ChildProcess | null = null;
  #startedOnce = false;
  #exited: Deno.CommandStatus | null = null;
  #log = "";
  #drained: Promise<unknown> = Promise.resolve();
  /** The first failure of a method of this server: the test's real error (see dispose). */
  #failure: unknown = null;

  private constructor(readonly varDir: string, readonly portBase: number) {}

  /** A server on a fresh var directory (removed by `dispose`). */
  static async create(): Promise<TestServer> {
    const varDir = await Deno.makeTempDir({ prefix: "oar-e2e-var-" });
    return new TestServer(varDir, await freePortBase());
  }

  get log(): string {
    return this.#log;
  }

  get confPath(): string {
    return `${this.varDir}/oar.conf`;
  }

  /**
   * The environment of everything this server runs: the test's var directory, and none of the
   * test process's OARCONFFILE, OAR_VAR_DIR... nor the machine's /etc/oar/oar.conf. start.ts then
   * finds no configuration of an admin's and uses its own ./var; `deno task` finds it there.
   */
  env(): { env: Record<string, string>; clearEnv: true } {
    return childEnv({ OAR_VAR_DIR: this.varDir });
  }

  /** The server's last output lines, for failures. */
  logTail(lines = LOG_TAIL_LINES): string {
    return this.#log.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Records the first failure (the one dispose must not hide) and returns it. */
  #fail(e: unknown): unknown {
    this.#failure ??= e;
    return e;
  }

  /** Starts the server and waits until the proxy listens. */
  async start(
    opts: { hosts?: number; cores?: number; allowSystemUsers?: string[] } = {},
  ): Promise<void> {
    // The cluster's shape on the first start, or when asked: start re-registers the resources
    // for a new shape (replacing, say, those a cluster in a box registered).
    const shape = !this.#startedOnce || opts.hosts !== undefined || opts.cores !== undefined
      ? ["--hosts", String(opts.hosts ?? 2), "--cores", String(opts.cores ?? 2)]
      : [];
    this.#startedOnce = true;
    const args = [
      "run",
      "-A",
      `${root}tools/start.ts`,
      ...shape,
      "--port-base",
      String(this.portBase),
      // The tests submit as root unless they say otherwise.
      ...(opts.allowSystemUsers ?? ["root"]).flatMap((u) => ["--allow-system-user", u]),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      ...this.env(),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#exited = null;
    const decoder = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) this.#log += decoder.decode(c, { stream: true });
    };
    this.#drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
    // Watched while we wait: a start.ts that exits fails the test at once, not after 60 s.
    child.status.then((st) => (this.#exited = st));
    const mark = this.#log.length;
    const alive = () => {
      if (this.#exited) {
        throw new Error(`tools/start.ts exited (code ${this.#exited.code}) before it was ready`);
      }
    };
    try {
      await waitFor("the server to listen", () => {
        alive();
        return this.#log.slice(mark).includes(`listening on port ${this.portBase}`);
      }, 60_000);
      // The commands go through the command server: ready once its socket answers.
      await waitFor("the command server to listen", async () => {
        alive();
        try {
          (await Deno.connect({ transport: "unix", path: this.commandSocket })).close();
          return true;
        } catch {
          return false;
        }
      }, 60_000);
    } catch (e) {
      // Nothing left running, and all its output read, before the log is shown.
      if (!this.#exited) {
        try {
          child.kill("SIGINT");
        } catch { /* exited meanwhile */ }
      }
      await child.status;
      await Promise.race([this.#drained, new Promise((r) => setTimeout(r, 2000))]);
      this.#child = null;
      throw this.#fail(
        new Error(
          `${(e as Error).message}; the server's last ${LOG_TAIL_LINES} lines:\n${this.logTail()}`,
        ),
      );
    }
  }

  get commandSocket(): string {
    return `${this.varDir}/oar-commands.sock`;
  }

  /** Adds keys to the server's oar.conf (takes effect at the next start). */
  async configure(values: Record<string, string | number>): Promise<void> {
    const lines = Object.entries(values).map(([k, v]) => `${k}="${v}"`).join("\n");
    await Deno.writeTextFile(this.confPath, `\n${lines}\n`, { append: true });
  }

  /** `deno task <args>` against this server, as a user in a shell would run it. */
  async task(args: string[]): Promise<TaskResult> {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", ...args],
      cwd: root,
      ...this.env(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  }

  /** Submits a job; its id. */
  async submit(args: string[]): Promise<number> {
    const r = await this.task(["oarsub", ...args]);
    const id = Number(/OAR_JOB_ID=(\d+)/.exec(r.stdout)?.[1]);
    if (r.code !== 0 || !Number.isInteger(id)) {
      throw this.#fail(new Error(`oarsub failed (${r.code}): ${r.stdout}${r.stderr}`));
    }
    return id;
  }

  /** The job's state as `oarstat -s` prints it. */
  async state(id: number): Promise<string | undefined> {
    const r = await this.task(["oarstat", "-s", "-j", String(id)]);
    return /: (\w+)/.exec(r.stdout)?.[1];
  }

  /** Waits for a final state (Terminated or Error) and returns it. */
  async finalState(id: number, timeoutMs = 60_000): Promise<string> {
    return await waitFor(`job ${id} to end`, async () => {
      const s = await this.state(id);
      return s === "Terminated" || s === "Error" ? s : undefined;
    }, timeoutMs).catch((e) => {
      throw this.#fail(new Error(`${e.message}\n${this.#log}`));
    });
  }

  /**
   * Processes whose command line mentions the var dir (postgres, almighty, its children),
   * except the local oarexec agent: it belongs to the "node", outlives the server like any
   * oarexec, and leaves once idle (`stopNode` ends it at once).
   */
  async leftovers(): Promise<string[]> {
    return (await this.#processes()).filter((l) => !l.includes(" --serve"));
  }

  async #processes(): Promise<string[]> {
    const out = await new Deno.Command("pgrep", { args: ["-af", this.varDir], stdout: "piped" })
      .output();
    return new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
  }

  /** Ends what runs on the test's "node": the oarexec agent and the jobs it still holds. */
  async stopNode(): Promise<void> {
    const agents = (await this.#processes()).filter((l) => l.includes(" --serve"))
      .map((l) => Number(l.split(" ")[0]));
    for (const pid of agents) {
      for (const target of [-pid, pid]) {
        try {
          Deno.kill(target, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    await waitFor(
      "the oarexec agent to leave",
      async () => (await this.#processes()).length === 0,
      20_000,
    );
  }

  /** Ctrl-C; returns start's exit code once nothing of the server is left running. */
  async stop(): Promise<number> {
    const child = this.#child;
    if (!child) return 0;
    this.#child = null;
    try {
      child.kill("SIGINT");
    } catch { /* it exited by itself (its status says how) */ }
    const status = await child.status;
    await this.#drained;
    await waitFor("no process left", async () => (await this.leftovers()).length === 0, 20_000)
      .catch(async (e) => {
        throw new Error(`${e.message}: ${(await this.leftovers()).join("\n")}`);
      });
    return status.code;
  }

  /**
   * Stops everything and removes the var directory. A failure here must not hide the test's own
   * (Deno shows a SuppressedError without either message): after a failure of this server's
   * methods it is only printed; otherwise it is printed and thrown, with the server's last lines.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    let problem: unknown = null;
    try {
      await this.stop();
      await this.stopNode();
    } catch (e) {
      problem = e;
    } finally {
      await Deno.remove(this.varDir, { recursive: true }).catch((e) => (problem ??= e));
    }
    if (problem === null) return;
    const err = new Error(
      `stopping the test server failed: ${(problem as Error)?.message ?? problem}; ` +
        `its last ${LOG_TAIL_LINES} lines:\n${this.logTail()}`,
    );
    console.error(err.message);
    if (this.#failure === null) throw err;
  }

  /**
   * Sends `signal` to the start process alone (SIGKILL: as if it crashed) and waits for it;
   * its exit code. What it leaves behind is the test's to check (`leftovers`).
   */
  async signalStart(signal: Deno.Signal): Promise<number> {
    const child = this.#child;
    if (!child) throw new Error("the server is not started");
    this.#child = null;
    child.kill(signal);
    const status = await child.status;
    await this.#drained;
    return status.code;
  }

  /**
   * `deno task start` on this var dir and port base with `args`, for a start expected to end by
   * itself (refused); killed after `timeoutMs` so that a test cannot hang on one that runs.
   */
  async runStart(args: string[], timeoutMs = 60_000): Promise<TaskResult> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}tools/start.ts`, "--port-base", String(this.portBase), ...args],
      cwd: root,
      env: { OAR_VAR_DIR: this.varDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGINT");
      } catch { /* gone */ }
    }, timeoutMs);
    const out = await child.output();
    clearTimeout(timer);
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  }
}
