/**
 * The appendice proxy (docs/modules.md §2, docs/differences.md): a TCP listener on SERVER_PORT for
 * the legacy text protocol of oarsub, oardel and oarexec. Each newline-terminated line is routed
 * over ZeroMQ: job lines (`OAREXEC_…`, `OARRUNJOB_…`, `LEONEXTERMINATE_…`) to bipbip_commander,
 * anything else to almighty. Garbage is logged and dropped; hostile clients are bounded
 * (connections, line length, idle time, reports held), so none can take the proxy down.
 *
 * Acknowledged reports (issue 11): an oarexec report's connection is held, and the message to
 * bipbip_commander carries a random token; when bipbip_commander sends `OARACK_<token>` back
 * (bipbip handled the report), `OK` is written to that connection — the only thing ever written
 * to a client. OAR's own oarexec closes at once: the write then fails, silently. Past
 * `maxHeldReports`, a report is forwarded untagged (its oarexec times out and sends it again).
 *
 * Recovery in seconds (issue 22): a report that will not be acknowledged does not wait out
 * oarexec's acknowledgement timeout. Its connection is closed, and its oarexec sends it again
 * after its short back-off, when bipbip_commander says it could not be handled
 * (`OARNACK_<token>`), when it cannot be forwarded, and when a bipbip_commander starts
 * (`OARCOMMANDER_STARTED`): every report held then was forwarded to its predecessor, which may
 * have died with it. A commander's start also asks almighty for a scheduling round, which
 * notifies the toLaunch jobs again (an `OARRUN` may have been lost with the old commander).
 */
import type { Logger } from "../../lib/runtime/log.ts";
import {
  encodeAlmightyMessage,
  encodeCommanderMessage,
  isCommanderStartedLine,
  LineSplitter,
  newAckToken,
  parseAckLine,
  parseLegacyLine,
  parseNackLine,
  parseOarexecArgs,
  REPORT_ACK,
} from "../../lib/protocol/mod.ts";
import type { Verdict } from "./challenges.ts";

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
  /** Most simultaneous clients from one address (default 32); more are closed at once. */
  maxConnectionsPerHost?: number;
  /** The peer addresses served (default: any); others are closed at once. */
  allowed?: ((addr: string) => boolean) | null;
  /**
   * A client that sends no useful line this long is disconnected: blank or whitespace lines do
   * not count (issue 20: they kept 1,024 idle clients connected for good).
   */
  idleTimeoutMs?: number;
  /** Rejected lines and clients logged per `rejectLogIntervalMs`; the rest are summed per host. */
  rejectLogLines?: number;
  rejectLogIntervalMs?: number;
  /**
   * Checks an oarexec report's challenge before it is forwarded (challenges.ts): a bad one, or
   * a report for no job, is dropped and its connection closed.
   */
  checker?: { check(jobId: number, challenge: string, host: string): Promise<Verdict> };
  /** Most reports waiting for their acknowledgement at once (default 256). */
  maxHeldReports?: number;
  /**
   * A client waiting for an acknowledgement is disconnected after this long (default 30 min);
   * oarexec gives up waiting well before (OAREXEC_REPORT_ACK_TIMEOUT).
   */
  holdTimeoutMs?: number;
  /**
   * A commander's start is acted on at most once in this long (default 2000 ms): the line
   * carries no secret, and a client repeating it must not keep every oarexec re-sending.
   */
  commanderStartedMinIntervalMs?: number;
  log?: Logger;
}

export interface ProxyStats {
  connections: number;
  routedToAlmighty: number;
  routedToCommander: number;
  dropped: number;
  /** Reports acknowledged to their client (the write may still have found it closed). */
  acknowledged: number;
  /** Reports forwarded without a token because too many were held. */
  untagged: number;
  /** Reports whose connection was closed for their oarexec to send them again. */
  released: number;
  /** Clients closed at once: not allowed, or over a cap. */
  refused: number;
  /** Clients closed for sending nothing useful within the idle timeout. */
  idleClosed: number;
  /** Reports dropped for a bad challenge or naming no job. */
  badReports: number;
}

interface Client {
  conn: Deno.TcpConn;
  host: string;
  /** performance.now() of the client's last useful line (or its connection). */
  lastUseful: number;
  /** Closed by the proxy: stop reading. */
  closed: boolean;
  /** Tokens of this client's reports not acknowledged yet. */
  tokens: Set<string>;
}

export class AppendiceProxy {
  readonly stats: ProxyStats = {
    connections: 0,
    routedToAlmighty: 0,
    routedToCommander: 0,
    dropped: 0,
    acknowledged: 0,
    untagged: 0,
    released: 0,
    refused: 0,
    idleClosed: 0,
    badReports: 0,
  };
  /** Open clients per peer address. */
  #perHost = new Map<string, number>();
  #rejects: RejectLog;
  #listener: Deno.TcpListener;
  #open = new Set<Deno.TcpConn>();
  /** Held reports: token → its client. */
  #held = new Map<string, Client>();
  #done: Promise<void>;
  #closing = false;
  /** When a commander's start was last acted on (performance.now()). */
  #lastCommanderStart = -Infinity;

  constructor(readonly sinks: ProxySinks, readonly opts: ProxyOptions) {
    this.#rejects = new RejectLog(
      opts.rejectLogLines ?? 10,
      opts.rejectLogIntervalMs ?? 10_000,
      opts.log,
    );
    this.#listener = Deno.listen({ hostname: opts.hostname ?? "0.0.0.0", port: opts.port });
    this.#done = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Reports waiting for their acknowledgement. */
  get held(): number {
    return this.#held.size;
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
      const host = (conn.remoteAddr as Deno.NetAddr).hostname;
      const perHost = this.#perHost.get(host) ?? 0;
      let refusal: string | null = null;
      if (this.opts.allowed && !this.opts.allowed(host)) refusal = "address not allowed";
      else if (this.#open.size >= max) refusal = `too many clients (${this.#open.size})`;
      else if (perHost >= (this.opts.maxConnectionsPerHost ?? 32)) {
        refusal = `too many clients from this address (${perHost})`;
      }
      if (refusal !== null) {
        this.stats.refused++;
        this.#rejects.reject(host, `client closed: ${refusal}`);
        try {
          conn.close();
        } catch { /* closed already */ }
        continue;
      }
      this.stats.connections++;
      this.#open.add(conn);
      this.#perHost.set(host, perHost + 1);
      this.#serve(conn, host).finally(() => {
        this.#open.delete(conn);
        const n = (this.#perHost.get(host) ?? 1) - 1;
        if (n > 0) this.#perHost.set(host, n);
        else this.#perHost.delete(host);
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    }
  }

  async #serve(conn: Deno.TcpConn, host: string): Promise<void> {
    const client: Client = {
      conn,
      host,
      lastUseful: performance.now(),
      closed: false,
      tokens: new Set(),
    };
    try {
      await this.#read(client);
    } finally {
      for (const t of client.tokens) this.#held.delete(t);
      client.tokens.clear();
    }
  }

  async #read(client: Client): Promise<void> {
    const { conn } = client;
    const splitter = new LineSplitter();
    const buf = new Uint8Array(16 * 1024);
    const idle = this.opts.idleTimeoutMs ?? 60_000;
    const hold = this.opts.holdTimeoutMs ?? 30 * 60_000;
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let idled = false;
      const timeout = new Promise<null>((resolve) => {
        // A client waiting for its acknowledgement is silent on purpose. Otherwise the time
        // left counts from its last useful line: blank lines do not buy time.
        const left = client.tokens.size > 0
          ? hold
          : Math.max(0, idle - (performance.now() - client.lastUseful));
        timer = setTimeout(() => {
          idled = client.tokens.size === 0;
          resolve(null);
        }, left);
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
      if (n === null) {
        if (idled) {
          this.stats.idleClosed++;
          this.#rejects.reject(
            client.host,
            "client closed: nothing useful within the idle timeout",
          );
        }
        break;
      }
      const { lines, errors } = splitter.push(buf.subarray(0, n));
      for (const e of errors) this.#drop(client.host, e);
      for (const line of lines) {
        await this.#route(line, client);
        if (client.closed) return;
      }
    }
    for (const line of splitter.end()) {
      await this.#route(line, client);
      if (client.closed) return;
    }
  }

  #drop(host: string, reason: string, line?: string): void {
    this.stats.dropped++;
    this.#rejects.reject(
      host,
      `dropped a message: ${reason} ${
        line === undefined ? "" : JSON.stringify(line.slice(0, 120))
      }`,
    );
  }

  #close(client: Client): void {
    client.closed = true;
    try {
      client.conn.close();
    } catch { /* closed already */ }
  }

  async #route(line: string, client: Client): Promise<void> {
    if (line.trim() === "") return; // keep-alive newlines: neither logged nor useful
    client.lastUseful = performance.now();
    const ack = parseAckLine(line);
    if (ack !== null) return this.acknowledge(ack);
    const nack = parseNackLine(line);
    if (nack !== null) return this.reject(nack);
    if (isCommanderStartedLine(line)) return await this.commanderStarted();
    const parsed = parseLegacyLine(line);
    if (!parsed.ok) return this.#drop(client.host, parsed.error, line);
    let token: string | null = null;
    try {
      if (parsed.value.kind === "commander") {
        const message = parsed.value.message;
        if (message.cmd === "OAREXEC" && this.opts.checker !== undefined) {
          const report = parseOarexecArgs(message.job_id, message.args);
          const verdict: Verdict = report.ok
            ? await this.opts.checker.check(message.job_id, report.value.challenge, client.host)
            : "bad";
          if (verdict !== "ok") {
            // Dropped before it costs a bipbip run or a held slot; its connection is closed
            // (an honest oarexec sends it again after its short back-off).
            this.stats.badReports++;
            this.#drop(
              client.host,
              verdict === "no_job" ? "report for no job" : "report with a bad challenge",
              line.slice(0, 40),
            );
            return this.#close(client);
          }
        }
        if (message.cmd === "OAREXEC") {
          if (this.#held.size < (this.opts.maxHeldReports ?? 256)) {
            token = newAckToken();
            this.#held.set(token, client);
            client.tokens.add(token);
            message.ack = token;
          } else {
            this.stats.untagged++;
            this.opts.log?.warn(
              "{n} reports wait for their acknowledgement; {line} goes untagged",
              {
                n: this.#held.size,
                line: JSON.stringify(line.slice(0, 40)),
              },
            );
          }
        }
        await this.sinks.commander(encodeCommanderMessage(message));
        this.stats.routedToCommander++;
      } else {
        await this.sinks.almighty(encodeAlmightyMessage(parsed.value.message));
        this.stats.routedToAlmighty++;
      }
    } catch (e) {
      this.#drop(client.host, `cannot forward: ${e}`, line);
      // Its oarexec sends it again soon, rather than at its acknowledgement timeout.
      if (token !== null) this.#release(token, "it could not be forwarded");
    }
  }

  /**
   * Closes the connection of the held report `token` (and so of any other report that client
   * holds: each is sent again, a duplicate is ignored by bipbip), for its oarexec to send it
   * again after its short back-off.
   */
  #release(token: string, why: string): void {
    const client = this.#held.get(token);
    if (client === undefined) return;
    for (const t of client.tokens) this.#held.delete(t);
    this.stats.released += client.tokens.size;
    this.opts.log?.info("closing a report's connection ({why}): its oarexec sends it again", {
      why,
    });
    client.tokens.clear();
    try {
      client.conn.close();
    } catch { /* closed already */ }
  }

  /** bipbip could not handle the report tagged `token`: its oarexec sends it again. */
  reject(token: string): void {
    if (!this.#held.has(token)) {
      this.opts.log?.debug("negative acknowledgement for no held report");
      return;
    }
    this.#release(token, "it was not handled");
  }

  /**
   * A bipbip_commander started: the reports held now went to its predecessor and are sent
   * again; almighty is asked for a scheduling round (see the header).
   */
  async commanderStarted(): Promise<void> {
    const now = performance.now();
    if (now - this.#lastCommanderStart < (this.opts.commanderStartedMinIntervalMs ?? 2000)) {
      this.opts.log?.debug("bipbip_commander start already handled");
      return;
    }
    this.#lastCommanderStart = now;
    const held = [...this.#held.keys()];
    this.opts.log?.info("bipbip_commander started: {n} held report(s) to be sent again", {
      n: held.length,
    });
    for (const t of held) this.#release(t, "bipbip_commander restarted");
    try {
      await this.sinks.almighty(encodeAlmightyMessage({ cmd: "Scheduling" }));
      this.stats.routedToAlmighty++;
    } catch (e) {
      this.opts.log?.warn("cannot ask almighty for a scheduling round: {error}", {
        error: String(e),
      });
    }
  }

  /**
   * bipbip handled the report tagged `token`: `OK` to its client. An unknown token (the client
   * left, the proxy restarted since, or a guess) is ignored.
   */
  acknowledge(token: string): void {
    const client = this.#held.get(token);
    if (client === undefined) {
      this.opts.log?.debug("acknowledgement for no held report");
      return;
    }
    this.#held.delete(token);
    client.tokens.delete(token);
    this.stats.acknowledged++;
    // OAR's oarexec does not wait for it: a closed connection is fine. The write is tiny: it
    // cannot block on a client that reads nothing.
    try {
      client.conn.write(new TextEncoder().encode(`${REPORT_ACK}\n`)).catch(() => {});
    } catch { /* closed already */ }
  }

  /** Stops listening and disconnects every client. */
  async stop(): Promise<void> {
    this.#closing = true;
    this.#rejects.close();
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

/**
 * The proxy's rejection log (issue 20): at most `lines` lines per `intervalMs`; past them, one
 * summary per host at the interval's end ("M more rejected lines from H"). A flood of garbage
 * costs a counter increment per line, not a log line.
 */
export class RejectLog {
  #logged = 0;
  #more = new Map<string, number>();
  #timer: ReturnType<typeof setInterval>;

  constructor(readonly lines: number, readonly intervalMs: number, readonly log?: Logger) {
    this.#timer = setInterval(() => this.#roll(), intervalMs);
  }

  reject(host: string, what: string): void {
    if (this.#logged < this.lines) {
      this.#logged++;
      this.log?.warn("{what} (from {host})", { what, host });
      return;
    }
    // The number of hosts is bounded by the clients the proxy accepts and refuses per interval.
    if (this.#more.size < 1000 || this.#more.has(host)) {
      this.#more.set(host, (this.#more.get(host) ?? 0) + 1);
    }
  }

  #roll(): void {
    this.#logged = 0;
    for (const [host, n] of this.#more) {
      this.log?.warn("{n} more rejected lines from {host}", { n, host });
    }
    this.#more.clear();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#roll();
  }
}
