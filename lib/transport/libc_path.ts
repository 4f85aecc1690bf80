/**
 * Where the C library is, apart from its binding (lib/transport/peer_socket.ts), so that computing
 * a module's flags (lib/permissions/mod.ts) does not load it. Pass it as `--allow-ffi=<LIBC_PATH>`.
 */
const CANDIDATES = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib64/libc.so.6",
];

export const LIBC_PATH: string = resolveLibc();

function resolveLibc(): string {
  for (const p of CANDIDATES) {
    try {
      // Without --allow-read this throws: the first candidate is Debian's amd64 path.
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return CANDIDATES[0];
}
