/**
 * The frame every daemon (almighty, appendice_proxy, bipbip_commander, greta) runs in, beside
 * the one-shot frame (oneshot.ts): configuration and logging, then the daemon's setup (sockets
 * bound, state restored); then, until a stop signal or the end of the supervising parent
 * (parent_watch.ts), its body; then its own close, and the ZeroMQ context terminated so that
 * queued messages go out before the process exits.
 *
 * Exit codes: 1 when the configuration cannot be read or the setup throws (logged as
 * "cannot start"); the number a setup returns instead of a daemon when it cannot start for a
 * reason of its own; otherwise what the body returns (0 for a body that only waits for the stop).
 */
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { startModule } from "./module_start.ts";
import { whenParentExits } from "./parent_watch.ts";
import { terminate } from "../transport/zmq.ts";
import { describeDbFailure } from "../db/target.ts";

export interface DaemonContext {
  config: Config;
  log: Logger;
  /** Aborted once the daemon is asked to stop: by one of its signals, or its parent's end. */
  stop: AbortSignal;
}

export interface Daemon {
  /**
   * The daemon's work, from the end of its setup to the stop (or earlier, when it ends on its
   * own); resolves to the exit code. Without it the daemon waits for the stop and exits 0.
   */
  run?: () => Promise<number>;
  /** Releases what the daemon holds, once `run` is over (including when it threw). */
  close: () => void | Promise<void>;
}

export interface DaemonOptions {
  /** The signals that stop the daemon (default SIGTERM and SIGINT). */
  signals?: readonly Deno.Signal[];
  /** Logs the signal that stops the daemon (almighty's children stop with it: say why). */
  logSignal?: boolean;
}

/**
 * Runs a daemon: `setup` gets the configuration, the logger and the stop signal, and gives back
 * the daemon, or the exit code when it cannot start (after releasing what it took).
 */
export async function runDaemon(
  name: string,
  setup: (ctx: DaemonContext) => Daemon | number | Promise<Daemon | number>,
  opts: DaemonOptions = {},
): Promise<number> {
  const started = startModule(name);
  if (!started) return 1;
  const { config, log } = started;
  const stop = new AbortController();
  // Listened to from the start: a stop requested while the daemon sets up (sockets half bound)
  // is kept and honoured once it is set up, never an abrupt end (exit 143) with its setup undone.
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
  let setUp = false;
  let early: Deno.Signal | null = null;
  const requestStop = (sig: Deno.Signal) => {
    if (opts.logSignal && !stop.signal.aborted) log.info("{sig} received; stopping", { sig });
    stop.abort();
  };
  const onSignal = signals.map((sig) => {
    const listener = () => {
      if (setUp) requestStop(sig);
      else early ??= sig;
    };
    Deno.addSignalListener(sig, listener);
    return () => Deno.removeSignalListener(sig, listener);
  });
  const unlisten = () => {
    for (const remove of onSignal) remove();
  };
  let daemon: Daemon | number;
  try {
    daemon = await setup({ config, log, stop: stop.signal });
  } catch (e) {
    // A database it cannot reach or log in to is named, with the oar.conf that named it.
    log.error("cannot start: {error}", { error: describeDbFailure(e, config) ?? String(e) });
    daemon = 1;
  }
  if (typeof daemon === "number") {
    unlisten();
    await terminate();
    return daemon;
  }
  setUp = true;
  if (early !== null) requestStop(early);
  whenParentExits(() => stop.abort());
  const run = daemon.run ?? (() => waitFor(stop.signal).then(() => 0));
  try {
    return await run();
  } finally {
    await daemon.close();
    await terminate();
    unlisten();
  }
}

function waitFor(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}
