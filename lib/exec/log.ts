/**
 * oarexec's own log: plain lines `[oarexec <id>] ...` on stderr until it detaches (the launcher
 * relays them into bipbip's log), then into `<tmp>/oarexec_<id>.log` when the descriptor asks
 * for debug output, else nowhere. oarexec runs on nodes, without the server's log setup.
 */
export class OarexecLog {
  #file: Deno.FsFile | null = null;
  #stderr = true;
  readonly #encoder = new TextEncoder();

  /**
   * `sink` replaces stderr before the detach: the agent sends a job's early lines to the
   * launcher that waits for its rendezvous.
   */
  constructor(
    readonly jobId: number | string,
    readonly sink: (line: Uint8Array) => void = (line) => Deno.stderr.writeSync(line),
  ) {}

  info(msg: string): void {
    const line = this.#encoder.encode(
      `[oarexec ${this.jobId}] [${new Date().toISOString()}] ${msg}\n`,
    );
    try {
      if (this.#file) this.#file.writeSync(line);
      else if (this.#stderr) this.sink(line);
    } catch {
      // A log line must never take the job down (closed pipe, full disk).
    }
  }

  /** After detaching: stop writing to stderr; keep a file when debugging. */
  detach(debugFile: string | null): void {
    this.#stderr = false;
    if (debugFile === null) return;
    try {
      this.#file = Deno.openSync(debugFile, { append: true, create: true });
    } catch {
      this.#file = null;
    }
  }

  close(): void {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }
}
