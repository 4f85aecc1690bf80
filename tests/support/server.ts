/**
 * The whole server as `deno task start` runs it, for end-to-end tests: its own embedded
 * PostgreSQL in a fresh var directory, its own ports, the real commands through `deno task`,
 * and a stop that checks nothing is left running.
 */
import { freePort } from "./ports.ts";
import { waitFor } from "./proc.ts";

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

export class TestServer {
  #child: Deno.ChildProcess | null = null;
  #log = "";
  #drained: Promise<unknown> = Promise.resolve();

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

  /** Starts the server and waits until the proxy listens. */
  async start(
    opts: { hosts?: number; cores?: number; allowSystemUsers?: string[] } = {},
  ): Promise<void> {
    const args = [
      "run",
      "-A",
      `${root}tools/start.ts`,
      "--hosts",
      String(opts.hosts ?? 2),
      "--cores",
      String(opts.cores ?? 2),
      "--port-base",
      String(this.portBase),
      // The tests submit as root unless they say otherwise.
      ...(opts.allowSystemUsers ?? ["root"]).flatMap((u) => ["--allow-system-user", u]),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      env: { OAR_VAR_DIR: this.varDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const decoder = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) this.#log += decoder.decode(c, { stream: true });
    };
    this.#drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
    const mark = this.#log.length;
    await waitFor(
      "the server to listen",
      () => this.#log.slice(mark).includes(`listening on port ${this.portBase}`),
      60_000,
    ).catch((e) => {
      throw new Error(`${e.message}\n${this.#log}`);
    });
    // The commands go through the command server: ready once its socket answers.
    await waitFor("the command server to listen", async () => {
      try {
        (await Deno.connect({ transport: "unix", path: this.commandSocket })).close();
        return true;
      } catch {
        return false;
      }
    }, 60_000).catch((e) => {
      throw new Error(`${e.message}\n${this.#log}`);
    });
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
      env: { OAR_VAR_DIR: this.varDir, NO_COLOR: "1" },
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
      throw new Error(`oarsub failed (${r.code}): ${r.stdout}${r.stderr}`);
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
      throw new Error(`${e.message}\n${this.#log}`);
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
    child.kill("SIGINT");
    const status = await child.status;
    await this.#drained;
    await waitFor("no process left", async () => (await this.leftovers()).length === 0, 20_000)
      .catch(async (e) => {
        throw new Error(`${e.message}: ${(await this.leftovers()).join("\n")}`);
      });
    return status.code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.stop();
      await this.stopNode();
    } finally {
      await Deno.remove(this.varDir, { recursive: true });
    }
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
