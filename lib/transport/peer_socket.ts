/**
 * A unix stream socket server that knows who is calling: the kernel's peer credentials
 * (SO_PEERCRED: uid, gid and pid of the connecting process, recorded by the kernel at connect
 * time and impossible for the client to choose). The command server (modules/command_server/)
 * learns the caller of every OAR command this way, so no user ever holds database credentials.
 *
 * Deno's own unix listener does not expose the socket's descriptor, so the listening side is
 * libc's socket/bind/listen/accept4 through `Deno.dlopen` (`--allow-ffi=<LIBC_PATH>`). Blocking
 * calls (accept, read) run as `nonblocking: true` symbols on Deno's worker threads, each bounded:
 * reads by SO_RCVTIMEO, writes by SO_SNDTIMEO, accept by shutting the listener down on close.
 * Clients need nothing special: `Deno.connect({ transport: "unix", path })`.
 */
import { LIBC_PATH } from "./libc_path.ts";

export { LIBC_PATH };

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const SHUT_RDWR = 2;
/** sun_path's size in struct sockaddr_un (Linux). */
const SUN_PATH_MAX = 108;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32", nonblocking: true },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | null = null;

function lib(): Libc {
  return libc ??= Deno.dlopen(LIBC_PATH, SYMBOLS).symbols;
}

export class PeerSocketError extends Error {}

function check(rc: number, what: string): number {
  // errno is out of reach: a path-scoped --allow-ffi refuses Deno's pointer helpers.
  if (rc < 0) throw new PeerSocketError(`${what} failed`);
  return rc;
}

function timeval(ms: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  v.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
  return b;
}

/** Who is on the other end, as the kernel recorded it at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** One accepted connection; reads and writes are bounded by `ioTimeoutMs`. */
export class PeerConnection {
  #closed = false;
  #pending = 0;

  constructor(readonly fd: number, readonly peer: PeerCredentials) {}

  /** Up to `buf.length` bytes; 0 at end of stream or on timeout/failure (the peer is gone). */
  async read(buf: Uint8Array): Promise<number> {
    if (this.#closed) return 0;
    this.#pending++;
    try {
      const n = Number(await lib().read(this.fd, buf, BigInt(buf.length)));
      return n > 0 ? n : 0;
    } finally {
      this.#pending--;
    }
  }

  /** Writes everything; false when the peer is gone or stalled past the timeout. */
  async write(data: Uint8Array): Promise<boolean> {
    let off = 0;
    this.#pending++;
    try {
      while (off < data.length && !this.#closed) {
        const chunk = data.subarray(off);
        const n = Number(await lib().write(this.fd, chunk, BigInt(chunk.length)));
        if (n <= 0) return false;
        off += n;
      }
      return off === data.length;
    } finally {
      this.#pending--;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A read in flight on a worker thread holds the descriptor number: shut the socket down
    // (the read returns 0) and close it once nothing is in flight, so the number is not reused
    // under it.
    lib().shutdown(this.fd, SHUT_RDWR);
    const closeWhenIdle = () => {
      if (this.#pending > 0) setTimeout(closeWhenIdle, 10);
      else lib().close(this.fd);
    };
    closeWhenIdle();
  }
}

/** A listening unix socket whose connections carry their peer's credentials. */
export class PeerListener {
  #closed = false;
  #accepting = false;

  private constructor(readonly fd: number, readonly path: string, readonly ioTimeoutMs: number) {}

  /**
   * Listens at `path` (an existing socket file there is replaced), with the file's `mode`
   * (0o666: any local user may connect; who they are is what the server checks).
   */
  static async listen(
    path: string,
    opts: { mode?: number; ioTimeoutMs?: number } = {},
  ): Promise<PeerListener> {
    const encoded = new TextEncoder().encode(path);
    if (encoded.length >= SUN_PATH_MAX) {
      throw new PeerSocketError(`socket path too long (${encoded.length} bytes): ${path}`);
    }
    let stale = false;
    try {
      stale = Deno.lstatSync(path).isSocket === true;
    } catch { /* absent */ }
    if (stale) {
      // A socket file someone still answers on is another server's: never take it over.
      try {
        (await Deno.connect({ transport: "unix", path })).close();
        throw new PeerSocketError(`another server already listens at ${path}`);
      } catch (e) {
        if (e instanceof PeerSocketError) throw e;
      }
      Deno.removeSync(path);
    }
    const fd = check(lib().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    try {
      const addr = new Uint8Array(2 + SUN_PATH_MAX);
      new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
      addr.set(encoded, 2);
      check(lib().bind(fd, addr, 2 + encoded.length + 1), `bind ${path}`);
      Deno.chmodSync(path, opts.mode ?? 0o666);
      check(lib().listen(fd, 128), "listen");
    } catch (e) {
      lib().close(fd);
      throw e;
    }
    return new PeerListener(fd, path, opts.ioTimeoutMs ?? 30_000);
  }

  /** The next connection, or null once the listener is closed. */
  async accept(): Promise<PeerConnection | null> {
    while (!this.#closed) {
      this.#accepting = true;
      const fd = await lib().accept4(this.fd, null, null, SOCK_CLOEXEC);
      this.#accepting = false;
      if (this.#closed) {
        if (fd >= 0) lib().close(fd);
        break;
      }
      if (fd < 0) {
        // Out of descriptors or interrupted (errno is out of reach): back off briefly, retry.
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const cred = new Uint8Array(12);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, 12, true);
      if (lib().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) {
        lib().close(fd);
        continue;
      }
      const v = new DataView(cred.buffer);
      const tv = timeval(this.ioTimeoutMs);
      lib().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length);
      lib().setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, tv, tv.length);
      return new PeerConnection(fd, {
        pid: v.getInt32(0, true),
        uid: v.getUint32(4, true),
        gid: v.getUint32(8, true),
      });
    }
    return null;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Wakes an accept blocked on a worker thread (it returns EINVAL).
    lib().shutdown(this.fd, SHUT_RDWR);
    const fd = this.fd;
    const closeWhenIdle = () => {
      if (this.#accepting) setTimeout(closeWhenIdle, 10);
      else lib().close(fd);
    };
    closeWhenIdle();
    try {
      Deno.removeSync(this.path);
    } catch { /* already gone */ }
  }
}
