/**
 * appendice_proxy: bridges the legacy TCP protocol on SERVER_PORT to almighty and
 * bipbip_commander over ZeroMQ (docs/modules.md §2). Runs until SIGTERM/SIGINT; exit 0 on a clean
 * stop, 1 when it cannot start (port taken, bad configuration).
 */
import { almightyEndpoint, commanderEndpoint } from "../../lib/transport/endpoints.ts";
import { startModule } from "../../lib/runtime/module_start.ts";
import { whenParentExits } from "../../lib/runtime/parent_watch.ts";
import { AppendiceProxy } from "./proxy.ts";
import { PushSocket, terminate } from "../../lib/transport/zmq.ts";

export async function main(_args: string[]): Promise<number> {
  const started = startModule("appendice_proxy");
  if (!started) return 1;
  const { config, log } = started;
  const toAlmighty = new PushSocket();
  const toCommander = new PushSocket();
  let proxy: AppendiceProxy;
  try {
    toAlmighty.connect(almightyEndpoint(config));
    toCommander.connect(commanderEndpoint(config));
    proxy = new AppendiceProxy(
      { almighty: (t) => toAlmighty.send(t), commander: (t) => toCommander.send(t) },
      { port: config.int("SERVER_PORT"), log },
    );
  } catch (e) {
    log.error("cannot start: {error}", { error: String(e) });
    await terminate();
    return 1;
  }
  log.info("listening on port {port}", { port: proxy.port });
  const stopped = Promise.withResolvers<void>();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, stopped.resolve);
  whenParentExits(stopped.resolve);
  await stopped.promise;
  log.info("stopping");
  await proxy.stop();
  await terminate();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
