/**
 * The socket an interactive oarsub listens on while its job waits (the reference's
 * `init_tcp_server`: every address, a port the system picks). Its `host:port` goes into the
 * job's `info_type`, where the meta-scheduler, bipbip and leon find it.
 *
 * Anyone may connect: a connection is read for a bounded time and size, and garbage is only
 * shown, never acted upon beyond what the protocol's words mean.
 */
import { LineSplitter } from "../../lib/protocol/mod.ts";

/** A sender writes its lines and closes: one that lingers is cut off after this long. */
const CONNECTION_TIMEOUT_MS = 10_000;
/** No sender has reason to write more on one connection. */
const MAX_CONNECTION_BYTES = 16 * 1024;

export class NotificationListener {
  readonly #listener: Deno.TcpListener;
  #closed = false;

  private constructor(listener: Deno.TcpListener, readonly host: string) {
    this.#listener = listener;
  }

  /** Listens on every address; `host` is the name the server will connect back to. */
  static open(host: string): NotificationListener {
    return new NotificationListener(Deno.listen({ hostname: "0.0.0.0", port: 0 }), host);
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** `host:port` for the job's `info_type`. */
  get infoType(): string {
    return `${this.host}:${this.port}`;
  }

  /** Every line received, connection after connection, until `close`. */
  async *lines(): AsyncGenerator<string> {
    const pending: string[] = [];
    let wake = null as (() => void) | null;
    const push = (l: string) => {
      pending.push(l);
      wake?.();
    };
    const accepting = (async () => {
      try {
        for await (const conn of this.#listener) void readConnection(conn, push);
      } catch { /* closed */ }
      this.#closed = true;
      wake?.();
    })();
    try {
      for (;;) {
        while (pending.length) yield pending.shift()!;
        if (this.#closed) return;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      this.close();
      await accepting;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
  }
}

async function readConnection(conn: Deno.Conn, push: (line: string) => void): Promise<void> {
  const splitter = new LineSplitter(4096);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, CONNECTION_TIMEOUT_MS);
  let total = 0;
  try {
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      total += n;
      for (const l of splitter.push(buf.subarray(0, n)).lines) push(l);
      if (total > MAX_CONNECTION_BYTES) break;
    }
    for (const l of splitter.end()) push(l);
  } catch {
    /* reset or cut off */
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * The name the server connects back to: this host's name, as the reference's
 * `gethostbyname_ex(gethostname())`; `localhost` when the name is not readable.
 */
export function submissionHostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
