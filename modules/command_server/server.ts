/**
 * The command server: the privileged half of every user command. It runs as the OAR user with
 * the database credentials; users' commands (lib/cli/client.ts) send it their command line over
 * a unix socket that anyone may connect to, and it acts as the caller the kernel names in the
 * socket's peer credentials. Nothing in the request chooses the user: OARDO_USER is honoured
 * for root and oar only, as oardodo does. Every rule (ownership, admin commands, queues,
 * admission, request validity) is checked here by the commands' own code (lib/cli/), which
 * runs for each request inside its scope (lib/cli/scope.ts).
 */
import {
  COMMAND_REPLY_LINE_MAX_BYTES,
  COMMAND_REQUEST_MAX_BYTES,
  type CommandReply,
  type CommandRequest,
  parseCommandRequest,
} from "../../lib/protocol/commands.ts";
import type { CliContext } from "../../lib/cli/frame.ts";
import { isAdmin } from "../../lib/cli/identity.ts";
import { type RequestScope, withScope } from "../../lib/cli/scope.ts";
import { isValidUserName, lookupAccountByUid } from "../../lib/exec/passwd.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { type PeerConnection, PeerListener } from "../../lib/transport/peer_socket.ts";

export type CommandHandler = (args: string[]) => Promise<number>;

export interface CommandServerOptions {
  path: string;
  context: CliContext;
  log: Logger;
  handlers: Readonly<Record<string, CommandHandler>>;
  /** Requests served at once (the rest wait in the kernel's backlog). */
  maxConcurrent?: number;
  /** Requests served at once for one uid: one user's loop cannot take every slot. */
  maxPerUid?: number;
  /** How long a client may take to send its request, or to read a reply line. */
  ioTimeoutMs?: number;
}

export class CommandServer {
  readonly #running = new Set<Promise<void>>();
  readonly #perUid = new Map<number, number>();
  #served = 0;

  private constructor(
    readonly opts: CommandServerOptions,
    readonly listener: PeerListener,
  ) {}

  /** Listens at `opts.path`; throws when it cannot (or another server is there). */
  static async open(opts: CommandServerOptions): Promise<CommandServer> {
    const listener = await PeerListener.listen(opts.path, {
      mode: 0o666,
      ioTimeoutMs: opts.ioTimeoutMs ?? 30_000,
    });
    return new CommandServer(opts, listener);
  }

  get served(): number {
    return this.#served;
  }

  /** Serves until `stop`. */
  async serve(): Promise<void> {
    const max = this.opts.maxConcurrent ?? 64;
    for (;;) {
      while (this.#running.size >= max) await Promise.race(this.#running);
      const conn = await this.listener.accept();
      if (conn === null) break;
      const p = this.#serveConnection(conn).finally(() => this.#running.delete(p));
      this.#running.add(p);
    }
    await Promise.allSettled([...this.#running]);
  }

  stop(): void {
    this.listener.close();
  }

  async #serveConnection(conn: PeerConnection): Promise<void> {
    const uid = conn.peer.uid;
    const n = (this.#perUid.get(uid) ?? 0) + 1;
    this.#perUid.set(uid, n);
    const replies = new ReplyWriter(conn);
    try {
      if (n > (this.opts.maxPerUid ?? 16)) {
        replies.push({ err: "#ERROR: too many commands at once from this user; try again" });
        replies.push({ exit: 1 });
        return;
      }
      const text = await readRequest(conn);
      if (text === null) return;
      const req = parseCommandRequest(text);
      if (!req.ok) {
        replies.push({ err: `#ERROR: bad request: ${req.error}` });
        replies.push({ exit: 1 });
        return;
      }
      await this.#run(req.value, uid, replies);
    } catch (e) {
      this.opts.log.error("request failed: {error}", { error: String(e) });
      replies.push({ err: `#ERROR: the command server failed: ${(e as Error).message}` });
      replies.push({ exit: 1 });
    } finally {
      await replies.flushed();
      conn.close();
      const left = (this.#perUid.get(uid) ?? 1) - 1;
      if (left <= 0) this.#perUid.delete(uid);
      else this.#perUid.set(uid, left);
    }
  }

  async #run(req: CommandRequest, uid: number, replies: ReplyWriter): Promise<void> {
    const handler = Object.hasOwn(this.opts.handlers, req.command)
      ? this.opts.handlers[req.command]
      : undefined;
    if (!handler) {
      replies.push({ err: `#ERROR: unknown command ${req.command}` });
      replies.push({ exit: 1 });
      return;
    }
    const user = await callerName(uid, req.env.OARDO_USER);
    if ("error" in user) {
      replies.push({ err: `#ERROR: ${user.error}` });
      replies.push({ exit: 1 });
      return;
    }
    const scope: RequestScope = {
      user: user.name,
      cwd: req.cwd,
      hostname: req.hostname,
      infoType: req.infoType,
      files: req.files,
      out: (line) => replies.push({ out: line }),
      err: (line) => replies.push({ err: line }),
      context: this.opts.context,
    };
    this.#served++;
    this.opts.log.debug("uid {uid} as {user}: {command}", {
      uid,
      user: user.name,
      command: req.command,
    });
    let code: number;
    try {
      code = await withScope(scope, () => handler(req.args));
    } catch (e) {
      this.opts.log.error("{command} failed: {error}", {
        command: req.command,
        error: String(e),
      });
      replies.push({ err: `#ERROR: ${(e as Error).message}` });
      code = 1;
    }
    replies.push(
      scope.result === undefined ? { exit: code } : { exit: code, result: scope.result },
    );
  }
}

/**
 * The user a request acts as: the account of the caller's uid, or, for root and oar only, the
 * user OARDO_USER names (oardodo's rule).
 */
async function callerName(
  uid: number,
  asked: string | undefined,
): Promise<{ name: string } | { error: string }> {
  const account = await lookupAccountByUid(uid);
  if (!account) return { error: `uid ${uid} has no account on the OAR server` };
  if (!asked || asked === account.name) return { name: account.name };
  if (!isAdmin(account.name)) {
    return {
      error: `only root or oar may act as another user (OARDO_USER=${asked.slice(0, 64)}, ` +
        `you are ${account.name})`,
    };
  }
  // The admin vouches for the name: it need not have an account on this host (oarsub still
  // refuses a job of a user it cannot find).
  if (!isValidUserName(asked)) {
    return { error: `OARDO_USER is not a user name: ${asked.slice(0, 64)}` };
  }
  return { name: asked };
}

/** The request line, or null when the client sent none (gone, silent, or too much). */
async function readRequest(conn: PeerConnection): Promise<string | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === 0) return null;
    const nl = buf.subarray(0, n).indexOf(10);
    const part = buf.slice(0, nl >= 0 ? nl : n);
    size += part.length;
    if (size > COMMAND_REQUEST_MAX_BYTES) return null;
    chunks.push(part);
    if (nl >= 0) break;
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

/** Reply lines written in order, one write at a time; a gone client drops the rest. */
class ReplyWriter {
  #chain: Promise<boolean> = Promise.resolve(true);
  readonly #encoder = new TextEncoder();

  constructor(readonly conn: PeerConnection) {}

  push(reply: CommandReply): void {
    const bytes = this.#encoder.encode(JSON.stringify(fit(reply)) + "\n");
    this.#chain = this.#chain.then((alive) => alive && this.conn.write(bytes));
  }

  async flushed(): Promise<void> {
    await this.#chain;
  }
}

/** A reply line must fit what the command reads (the same limit on both sides). */
function fit(reply: CommandReply): CommandReply {
  // JSON escapes can grow a character to 6 bytes; the check is on the encoded size below.
  if ("out" in reply && reply.out.length * 6 > COMMAND_REPLY_LINE_MAX_BYTES) {
    const size = new TextEncoder().encode(JSON.stringify(reply)).length;
    if (size > COMMAND_REPLY_LINE_MAX_BYTES) {
      return { err: `#ERROR: an output line of ${size} bytes is over the limit; narrow the query` };
    }
  }
  return reply;
}
