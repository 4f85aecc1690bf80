/**
 * Companions started by almighty must not outlive it, even when almighty is killed with SIGKILL
 * (a restarted almighty would otherwise find the ports taken by orphans). The supervisor gives
 * each companion a pipe on stdin that it never writes to and sets OAR_SUPERVISED=1: the pipe
 * reaches end-of-file exactly when almighty is gone, whatever killed it.
 */
import { envGet } from "./env.ts";

/** Calls `onExit` once the supervising parent is gone; does nothing when not supervised. */
export function whenParentExits(onExit: () => void): void {
  if (envGet("OAR_SUPERVISED") !== "1") return;
  (async () => {
    const buf = new Uint8Array(256);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* nothing is ever written */ }
    } catch { /* closed */ }
    onExit();
  })();
}
