/**
 * The appendice proxy (spec §2, DECISIONS): a TCP listener on SERVER_PORT for the legacy text
 * protocol of oarsub, oardel and oarexec. Each newline-terminated line is routed over ZeroMQ:
 * job lines (`OAREXEC_…`, `OARRUNJOB_…`, `LEONEXTERMINATE_…`) to bipbip_commander, anything else
 * to almighty. Nothing is written back to clients. Garbage is logged and dropped; hostile
 * clients are bounded (connections, line length, idle time), so none can take the proxy down.
 */
import type { Logger } from "./log.ts";
import {
  encodeAlmightyMessage,
  encodeCommanderMessage,
  LineSplitter,
  parseLegacyLine,
} from "./protocol.ts";

export interface ProxySinks {
  /** Sends one encoded message to almighty. */
  almighty(text: string): Promise<void>;
  /** Sends one encoded message to bipbip_commander. */
  commander(text: string): Promise<void>;
}

export interface ProxyOptions {
  hostname?: string;
  port: number;
  /** Most simultaneous clients; more are closed at once (logged). */
  maxConnections?: number;
  /** A client silent this long is disconnected. */
  idleTimeoutMs?: number;
  log?: Logger;
}

export interface ProxyStats {
  connections: number;
  routedToAlmighty: number;
  routedToCommander: number;
  dropped: number;
}

export class AppendiceProxy {
  readonly stats: ProxyStats = {
    connections: 0,
    routedToAlmighty: 0,
    routedToCommander: 0,
    dropped: 0,
  };
  #listener: Deno.TcpListener;
  #open = new Set<Deno.TcpConn>();
  #done: Promise<void>;
  #closing = false;

  constructor(readonly sinks: ProxySinks, readonly opts: ProxyOptions) {
    this.#listener = Deno.listen({ hostname: opts.hostname ?? "0.0.0.0", port: opts.port });
    this.#done = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #accept(): Promise<void> {
    const max = this.opts.maxConnections ?? 1024;
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closing) return;
        this.opts.log?.error("accept failed: {error}", { error: String(e) });
        continue;
      }
      if (this.#open.size >= max) {
        this.opts.log?.warn("too many clients ({n}); closing a new one", { n: this.#open.size });
        conn.close();
        continue;
      }
      this.stats.connections++;
      this.#open.add(conn);
      this.#serve(conn).finally(() => {
        this.#open.delete(conn);
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    }
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const splitter = new LineSplitter();
    const buf = new Uint8Array(16 * 1024);
    const idle = this.opts.idleTimeoutMs ?? 60_000;
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), idle);
      });
      let n: number | null;
      try {
        const read = conn.read(buf);
        // If the idle timeout wins, the read fails once the connection closes: expected.
        read.catch(() => {});
        n = await Promise.race([read, timeout]);
      } catch {
        n = null; // reset by peer, or closed by stop()
      } finally {
        clearTimeout(timer);
      }
      if (n === null) break;
      const { lines, errors } = splitter.push(buf.subarray(0, n));
      for (const e of errors) this.#drop(e);
      for (const line of lines) await this.#route(line);
    }
    for (const line of splitter.end()) await this.#route(line);
  }

  #drop(reason: string, line?: string): void {
    this.stats.dropped++;
    this.opts.log?.warn("dropped a message: {reason} {line}", {
      reason,
      line: line === undefined ? "" : JSON.stringify(line.slice(0, 120)),
    });
  }

  async #route(line: string): Promise<void> {
    if (line.trim() === "") return; // keep-alive newlines are not worth a log line
    const parsed = parseLegacyLine(line);
    if (!parsed.ok) return this.#drop(parsed.error, line);
    try {
      if (parsed.value.kind === "commander") {
        await this.sinks.commander(encodeCommanderMessage(parsed.value.message));
        this.stats.routedToCommander++;
      } else {
        await this.sinks.almighty(encodeAlmightyMessage(parsed.value.message));
        this.stats.routedToAlmighty++;
      }
    } catch (e) {
      this.#drop(`cannot forward: ${e}`, line);
    }
  }

  /** Stops listening and disconnects every client. */
  async stop(): Promise<void> {
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    await this.#done;
  }
}
