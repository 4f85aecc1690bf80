/**
 * appendice_proxy: bridges the legacy TCP protocol on SERVER_PORT to almighty and
 * bipbip_commander over ZeroMQ (docs/modules.md §2). Runs until SIGTERM/SIGINT; exit 0 on a clean
 * stop, 1 when it cannot start (port taken, bad configuration).
 */
import { almightyEndpoint, commanderEndpoint } from "../../lib/transport/endpoints.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import { AppendiceProxy } from "./proxy.ts";
import { PushSocket } from "../../lib/transport/zmq.ts";

export function main(_args: string[]): Promise<number> {
  return runDaemon("appendice_proxy", ({ config, log }) => {
    const toAlmighty = new PushSocket();
    const toCommander = new PushSocket();
    toAlmighty.connect(almightyEndpoint(config));
    toCommander.connect(commanderEndpoint(config));
    const proxy = new AppendiceProxy(
      { almighty: (t) => toAlmighty.send(t), commander: (t) => toCommander.send(t) },
      { port: config.int("SERVER_PORT"), log },
    );
    log.info("listening on port {port}", { port: proxy.port });
    return {
      close: async () => {
        log.info("stopping");
        await proxy.stop();
      },
    };
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
