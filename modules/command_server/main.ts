/**
 * command_server: serves the user commands (oarsub, oarstat, oardel, oarhold, oarresume,
 * oarnodes, oarnotify, oarproperty, oarnodesetting) on COMMAND_SERVER_SOCKET, as the callers the
 * kernel names (server.ts). Started by almighty with its companions, or on its own on a
 * frontend. Runs until SIGTERM/SIGINT; exit 0 on a clean stop, 1 when it cannot start.
 */
import { dirname } from "node:path";
import { connect } from "../../lib/db/client.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import { enterServerMode } from "../../lib/cli/scope.ts";
import { ZmqNotifier } from "../../lib/transport/zmq_notifier.ts";
import { CommandServer } from "./server.ts";
import { COMMAND_HANDLERS } from "./commands.ts";

export function main(_args: string[]): Promise<number> {
  return runDaemon("command_server", async ({ config, log, stop }) => {
    enterServerMode();
    const path = config.str("COMMAND_SERVER_SOCKET");
    // Its directory must let users reach the socket (0755); the socket itself is 0666.
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const sql = connect(config, { max: 4, applicationName: "oar-command_server" });
    let notifier: ZmqNotifier | null = null;
    const server = await CommandServer.open({
      path,
      log,
      handlers: COMMAND_HANDLERS,
      context: { config, sql, log, notifier: () => (notifier ??= new ZmqNotifier(config, log)) },
    });
    log.info("listening on {path}", { path });
    // A stop signal, or the end of almighty when it supervises us: serving ends, then close.
    stop.addEventListener("abort", () => server.stop(), { once: true });
    if (stop.aborted) server.stop();
    return {
      run: async () => {
        await server.serve();
        return 0;
      },
      close: async () => {
        log.info("stopping ({n} requests served)", { n: server.served });
        server.stop();
        await notifier?.close();
        await sql.end({ timeout: 5 }).catch(() => {});
      },
    };
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
