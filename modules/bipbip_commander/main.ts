/**
 * bipbip_commander: pulls `{"job_id", "cmd", "args"}` messages and runs bipbip or leon for each
 * (docs/modules.md §3, docs/differences.md §9); acknowledges handled oarexec reports to the
 * appendice proxy on SERVER_PORT (issue 11). Runs until SIGTERM/SIGINT (exit 0); exit 1 when it
 * cannot start.
 */
import { AckSender, Commander, processSpawner, processWorkerSpawner } from "./commander.ts";
import { bindEndpoint } from "../../lib/transport/endpoints.ts";
import { startModule } from "../../lib/runtime/module_start.ts";
import { whenParentExits } from "../../lib/runtime/parent_watch.ts";
import { parseCommanderMessage } from "../../lib/protocol/mod.ts";
import { moduleCommand } from "../../lib/runtime/spawn.ts";
import { PullSocket, terminate } from "../../lib/transport/zmq.ts";

export async function main(_args: string[]): Promise<number> {
  const started = startModule("bipbip_commander");
  if (!started) return 1;
  const { config, log } = started;
  let pull: PullSocket;
  let commander: Commander;
  const acks = new AckSender(config.str("SERVER_HOSTNAME"), config.int("SERVER_PORT"), log);
  try {
    commander = new Commander({
      max: config.int("MAX_CONCURRENT_JOBS_STARTING_OR_TERMINATING"),
      childTimeoutMs: config.int("BIPBIP_COMMANDER_CHILD_TIMEOUT") * 1000,
      spawn: processSpawner((module, args) => moduleCommand(module, config, args), log),
      // bipbip invocations are served in batches by `bipbip --stdin` workers.
      worker: processWorkerSpawner(() => moduleCommand("bipbip", config, ["--stdin"]), log),
      acknowledge: (token) => acks.send(token),
      log,
    });
    pull = new PullSocket({ highWaterMark: 100_000 });
    pull.bind(
      await bindEndpoint(
        config.str("BIPBIP_COMMANDER_SERVER"),
        config.int("BIPBIP_COMMANDER_PORT"),
      ),
    );
  } catch (e) {
    log.error("cannot start: {error}", { error: String(e) });
    await terminate();
    return 1;
  }
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  whenParentExits(() => stop.abort());
  commander.prestart();
  log.info("ready");
  while (!stop.signal.aborted) {
    const msg = await pull.receive({ signal: stop.signal });
    if (msg === null) continue;
    const parsed = parseCommanderMessage(msg);
    if (!parsed.ok) {
      log.warn("dropped a message: {error}", { error: parsed.error });
      continue;
    }
    commander.enqueue(parsed.value);
  }
  log.info("stopping ({running} running, {queued} queued)", {
    running: commander.running,
    queued: commander.queued,
  });
  pull.close();
  await commander.stop();
  await acks.flush();
  await terminate();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
