/**
 * Greta's window forker (docs/modules.md §10.4, docs/differences.md §11): runs node-manager
 * commands (halt or wake a node, the host name on stdin) at most `size` at once; a command running
 * longer than `timeoutMs` is killed and reported as timed out. The host is never put on a command
 * line.
 */
import { isValidHostname } from "../../lib/protocol/mod.ts";

export type NodeCommand = "HALT" | "WAKEUP";

export interface Finished {
  host: string;
  command: NodeCommand;
  /** Exit code, or null when the command was killed at the window timeout. */
  code: number | null;
}

interface Queued {
  host: string;
  command: NodeCommand;
}

export interface ForkerOptions {
  size: number;
  timeoutMs: number;
  /** The shell command for each kind (admin configuration). */
  commands: Record<NodeCommand, string>;
}

export class WindowForker {
  #queue: Queued[] = [];
  #running = 0;
  #finished: Finished[] = [];
  #children = new Set<Deno.ChildProcess>();
  /** Highest number of commands seen running at once (for tests and logs). */
  peak = 0;
  #wake: (() => void) | null = null;

  constructor(readonly opts: ForkerOptions) {}

  submit(host: string, command: NodeCommand): void {
    if (!isValidHostname(host)) throw new Error(`invalid host name ${JSON.stringify(host)}`);
    this.#queue.push({ host, command });
    this.#pump();
  }

  get busy(): number {
    return this.#running + this.#queue.length;
  }

  /** Results since the last call. */
  takeFinished(): Finished[] {
    return this.#finished.splice(0);
  }

  /** Resolves when some command finishes (or at once if results are waiting). */
  changed(): Promise<void> {
    if (this.#finished.length) return Promise.resolve();
    return new Promise((r) => (this.#wake = r));
  }

  #pump(): void {
    while (this.#running < this.opts.size && this.#queue.length) {
      const job = this.#queue.shift()!;
      this.#running++;
      this.peak = Math.max(this.peak, this.#running);
      this.#run(job).then((code) => {
        this.#running--;
        this.#finished.push({ ...job, code });
        this.#wake?.();
        this.#wake = null;
        this.#pump();
      });
    }
  }

  async #run(job: Queued): Promise<number | null> {
    const cmd = this.opts.commands[job.command];
    if (!cmd) return 127;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("setsid", {
        args: ["sh", "-c", cmd],
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch {
      return 127;
    }
    this.#children.add(child);
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(job.host + "\n")).catch(() => {});
    await w.close().catch(() => {});
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, this.opts.timeoutMs);
    const status = await child.status;
    clearTimeout(timer);
    this.#children.delete(child);
    return timedOut ? null : status.code;
  }

  /** Kills whatever still runs. */
  async stop(): Promise<void> {
    const all = [...this.#children];
    this.#queue = [];
    for (const c of all) killGroup(c);
    await Promise.all(all.map((c) => c.status));
  }
}

function killGroup(child: Deno.ChildProcess): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}
