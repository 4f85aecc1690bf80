/**
 * greta: energy saving (docs/modules.md §10). Pulls CHECK/HALT/WAKEUP on GRETA_SERVER:GRETA_PORT,
 * runs the node-manager commands through its window forker, and suspects nodes that fail to boot or
 * halt. Started and supervised by almighty when ENERGY_SAVING_INTERNAL=yes. Exit 0 on a clean stop,
 * 1 when it cannot start, 2 or 3 for a bad ENERGY_SAVING_NODES_KEEPALIVE (as OAR's).
 */
import { connect } from "../../lib/db/client.ts";
import { bindEndpoint } from "../../lib/transport/endpoints.ts";
import { fillTimeouts, KeepAliveError, parseKeepAlive } from "./config.ts";
import { WindowForker } from "./forker.ts";
import { Greta } from "./greta.ts";
import { resourceColumns } from "../../lib/properties/columns.ts";
import { checkExpression, PropertyError } from "../../lib/properties/expr.ts";
import { ZmqNotifier } from "../../lib/transport/zmq_notifier.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { type GretaMessage, parseGretaMessage } from "../../lib/protocol/mod.ts";
import { PullSocket } from "../../lib/transport/zmq.ts";

/** Without messages, boots and commands are still checked this often. */
const CHECK_EVERY_MS = 5000;

export function main(_args: string[]): Promise<number> {
  return runDaemon("greta", async ({ config, log, stop }) => {
    let keepAlive;
    try {
      keepAlive = parseKeepAlive(config.str("ENERGY_SAVING_NODES_KEEPALIVE"));
    } catch (e) {
      log.error("{error}", { error: (e as Error).message });
      return e instanceof KeepAliveError ? e.exitCode : 1;
    }
    const { table, warnings } = fillTimeouts(
      config.str("ENERGY_SAVING_NODE_MANAGER_WAKEUP_TIMEOUT"),
    );
    for (const w of warnings) log.warn(w);
    // Both names are read; FORKER_SIZE wins (docs/differences.md §11).
    const size =
      config.isSet("ENERGY_SAVING_WINDOW_FORKER_SIZE") || !config.isSet("ENERGY_SAVING_WINDOW_SIZE")
        ? config.int("ENERGY_SAVING_WINDOW_FORKER_SIZE")
        : config.int("ENERGY_SAVING_WINDOW_SIZE");
    const forker = new WindowForker({
      size: Math.max(1, size),
      timeoutMs: config.int("ENERGY_SAVING_WINDOW_TIMEOUT") * 1000,
      commands: {
        HALT: config.str("ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD"),
        WAKEUP: config.str("ENERGY_SAVING_NODE_MANAGER_WAKE_UP_CMD"),
      },
    });
    const sql = connect(config, { max: 2, applicationName: "oar-greta" });
    const notifier = new ZmqNotifier(config, log);
    const greta = new Greta({
      sql,
      notifier,
      forker,
      keepAlive,
      timeouts: table,
      stateDir: config.str("OAR_RUNTIME_DIRECTORY") || null,
      log,
    });
    // Keep-alive conditions are SQL the admin wrote: checked like `oarsub -p` before any use.
    try {
      const columns = await resourceColumns(sql);
      for (const ka of keepAlive) ka.condition = checkExpression(ka.condition, columns).sql;
    } catch (e) {
      log.error("ENERGY_SAVING_NODES_KEEPALIVE: {error}", { error: (e as Error).message });
      await sql.end();
      return e instanceof PropertyError ? 2 : 1;
    }
    const pull = new PullSocket();
    try {
      pull.bind(await bindEndpoint(config.str("GRETA_SERVER"), config.int("GRETA_PORT")));
      await greta.restore();
    } catch (e) {
      await sql.end();
      throw e; // "cannot start"
    }
    return {
      run: () => serve(pull, greta, forker, log, stop),
      close: async () => {
        log.info("stopping");
        await greta.save().catch(() => {});
        await forker.stop();
        pull.close();
        await notifier.close();
        await sql.end({ timeout: 5 });
      },
    };
  });
}

/** Handles each message, and checks boots and commands when none comes, until the stop. */
async function serve(
  pull: PullSocket,
  greta: Greta,
  forker: WindowForker,
  log: Logger,
  stop: AbortSignal,
): Promise<number> {
  log.info("ready");
  while (!stop.aborted) {
    // A finished node-manager command ends the wait too, so its result is handled at once; an
    // aborted receive leaves the message in the socket for the next one.
    const commandDone = new AbortController();
    forker.changed().then(() => commandDone.abort());
    const raw = await pull.receive({
      signal: AbortSignal.any([stop, commandDone.signal, AbortSignal.timeout(CHECK_EVERY_MS)]),
    });
    if (stop.aborted) break;
    let msg: GretaMessage = { cmd: "CHECK", nodes: [] };
    if (raw !== null) {
      const parsed = parseGretaMessage(raw);
      if (!parsed.ok) {
        log.warn("dropped a message: {error}", { error: parsed.error });
        continue;
      }
      msg = parsed.value;
    }
    try {
      await greta.handle(msg);
    } catch (e) {
      // The database may be restarting: keep the state and try again on the next message.
      log.error("cannot handle {cmd}: {error}", { cmd: msg.cmd, error: String(e) });
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
