/**
 * bipbip_commander: pulls `{"job_id", "cmd", "args"}` messages and runs bipbip or leon for each
 * (docs/modules.md §3, docs/differences.md §9); acknowledges handled oarexec reports to the
 * appendice proxy on SERVER_PORT (issue 11). Runs until SIGTERM/SIGINT (exit 0); exit 1 when it
 * cannot start.
 */
import { AckSender, Commander, processSpawner, processWorkerSpawner } from "./commander.ts";
import { bindEndpoint } from "../../lib/transport/endpoints.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import { encodeCommanderStartedLine, parseCommanderMessage } from "../../lib/protocol/mod.ts";
import { moduleCommand } from "../../lib/runtime/spawn.ts";
import { PullSocket } from "../../lib/transport/zmq.ts";

export function main(_args: string[]): Promise<number> {
  return runDaemon("bipbip_commander", async ({ config, log, stop }) => {
    const acks = new AckSender(config.str("SERVER_HOSTNAME"), config.int("SERVER_PORT"), log);
    const commander = new Commander({
      max: config.int("MAX_CONCURRENT_JOBS_STARTING_OR_TERMINATING"),
      childTimeoutMs: config.int("BIPBIP_COMMANDER_CHILD_TIMEOUT") * 1000,
      spawn: processSpawner((module, args) => moduleCommand(module, config, args), log),
      // bipbip invocations are served in batches by `bipbip --stdin` workers.
      worker: processWorkerSpawner(() => moduleCommand("bipbip", config, ["--stdin"]), log),
      acknowledge: (token) => acks.send(token),
      reject: (token) => acks.reject(token),
      log,
    });
    const pull = new PullSocket({ highWaterMark: 100_000 });
    pull.bind(
      await bindEndpoint(
        config.str("BIPBIP_COMMANDER_SERVER"),
        config.int("BIPBIP_COMMANDER_PORT"),
      ),
    );
    return {
      run: async () => {
        commander.prestart();
        // Once bound: the proxy closes the reports it forwarded to a predecessor (their
        // oarexecs send them again, to us) and asks almighty to notify toLaunch jobs again.
        acks.announce(encodeCommanderStartedLine()).catch(() => {});
        log.info("ready");
        while (!stop.aborted) {
          const msg = await pull.receive({ signal: stop });
          if (msg === null) continue;
          const parsed = parseCommanderMessage(msg);
          if (!parsed.ok) {
            log.warn("dropped a message: {error}", { error: parsed.error });
            continue;
          }
          commander.enqueue(parsed.value);
        }
        return 0;
      },
      close: async () => {
        log.info("stopping ({running} running, {queued} queued)", {
          running: commander.running,
          queued: commander.queued,
        });
        pull.close();
        await commander.stop();
        await acks.flush();
      },
    };
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
