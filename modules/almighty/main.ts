/**
 * almighty: the server's automaton (docs/modules.md §1). Pulls commands on APPENDICE_SERVER_PORT,
 * runs the one-shot modules one at a time, supervises appendice_proxy, bipbip_commander and (with
 * ENERGY_SAVING_INTERNAL) greta. SIGTERM, SIGINT or SIGUSR1 stop it and all its children; it
 * then exits 10, as OAR's does. Exit 1 when it cannot start.
 */
import { DEFAULT_SETTINGS, type OneShotModule } from "./automaton.ts";
import { runLoop } from "./loop.ts";
import { Supervisor } from "./supervisor.ts";
import type { Config } from "../../lib/runtime/config.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { bindEndpoint } from "../../lib/transport/endpoints.ts";
import { encodeAlmightyMessage } from "../../lib/protocol/mod.ts";
import { moduleCommand } from "../../lib/runtime/spawn.ts";
import { StandbyPool } from "./standby.ts";
import { PullSocket } from "../../lib/transport/zmq.ts";

/** A module still running this long after a stop request is terminated. */
const STOP_GRACE_MS = 20_000;

export function main(_args: string[]): Promise<number> {
  return runDaemon("almighty", async ({ config, log, stop }) => {
    const pull = new PullSocket({ highWaterMark: 100_000 });
    try {
      pull.bind(
        await bindEndpoint(config.str("SERVER_HOSTNAME"), config.int("APPENDICE_SERVER_PORT")),
      );
    } catch (e) {
      log.error("cannot bind: {error}", { error: String(e) });
      return 1;
    }
    return {
      run: () => automaton(pull, config, log, stop),
      close: () => pull.close(),
    };
  }, { signals: ["SIGTERM", "SIGINT", "SIGUSR1"], logSignal: true });
}

/** Starts the companions, runs the automaton until the stop, then stops every child. */
async function automaton(
  pull: PullSocket,
  config: Config,
  log: Logger,
  stop: AbortSignal,
): Promise<number> {
  // Commands almighty gives itself, taken before the socket's.
  const own: Uint8Array[] = [];
  const companions = new Supervisor({
    log,
    // What a companion held when it died is lost: the commander's queue (launches, kills),
    // the proxy's lines on their way (submissions, ends). A round re-notifies the jobs still
    // toLaunch and picks up waiting ones, node_change_state runs after it, Leon retakes the
    // kills: nothing waits for the next periodic round.
    onRestart: (name) => {
      log.info("{name} restarted: asking for a scheduling round and Leon", { name });
      for (const cmd of ["Scheduling", "Qdel"] as const) {
        own.push(new TextEncoder().encode(encodeAlmightyMessage({ cmd })));
      }
    },
  });
  // Ctrl-C reaches the companions too: they must not be restarted while everything stops.
  stop.addEventListener("abort", () => companions.stopping(), { once: true });
  companions.add("appendice_proxy", moduleCommand("appendice_proxy", config));
  companions.add("bipbip_commander", moduleCommand("bipbip_commander", config));
  // The user commands' privileged half, on the server host (a frontend runs its own).
  if (config.bool("COMMAND_SERVER_WITH_ALMIGHTY")) {
    companions.add("command_server", moduleCommand("command_server", config));
  }
  if (config.bool("ENERGY_SAVING_INTERNAL")) {
    companions.add("greta", moduleCommand("greta", config));
  }

  const standbys = new StandbyPool(config);
  stop.addEventListener("abort", () => standbys.stopping(), { once: true });
  const code = await runLoop(
    {
      receive: (timeoutMs, signal) =>
        own.length > 0 ? Promise.resolve(own.shift()!) : pull.receive({ timeoutMs, signal }),
      runModule: (module, signal) => runModule(module, standbys, signal),
      now: () => Date.now() / 1000,
    },
    {
      ...DEFAULT_SETTINGS,
      minBetween: config.int("SCHEDULER_MIN_TIME_BETWEEN_2_CALLS"),
      spacingFactor: config.int("SCHEDULER_ADAPTIVE_SPACING"),
      finaudPeriod: config.int("FINAUD_FREQUENCY"),
    },
    stop,
    log,
  );
  await Promise.all([companions.stop(), standbys.stop()]);
  return code;
}

/** Runs a one-shot module; on a stop request it gets STOP_GRACE_MS, then SIGTERM. */
async function runModule(
  module: OneShotModule,
  standbys: StandbyPool,
  stop: AbortSignal,
): Promise<number> {
  let child: Deno.ChildProcess | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onStop = () => {
    timer = setTimeout(() => {
      try {
        child?.kill("SIGTERM");
      } catch { /* gone */ }
    }, STOP_GRACE_MS);
  };
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });
  try {
    return await standbys.run(module, (c) => (child = c));
  } catch {
    return 127; // cannot be started
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
