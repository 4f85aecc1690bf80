/**
 * Where libzmq is, apart from the binding (lib/transport/zmq.ts), so that computing a module's flags
 * (lib/permissions/mod.ts) does not load the binding.
 */

/** Library path; pass it as `--allow-ffi=<LIBZMQ_PATH>`. */
export const LIBZMQ_PATH: string = resolveLibPath();

function resolveLibPath(): string {
  const fallback = "/usr/lib/x86_64-linux-gnu/libzmq.so.5";
  // Querying first keeps the module usable without --allow-env (Deno.env.get would throw).
  const state = Deno.permissions.querySync?.({ name: "env", variable: "OAR_LIBZMQ" }).state;
  if (state !== "granted") return fallback;
  return Deno.env.get("OAR_LIBZMQ") || fallback;
}
