/**
 * appendice_proxy: bridges the legacy TCP protocol on SERVER_PORT to almighty and
 * bipbip_commander over ZeroMQ (docs/modules.md §2). Runs until SIGTERM/SIGINT; exit 0 on a clean
 * stop, 1 when it cannot start (port taken, bad configuration).
 *
 * Allowed peers (issue 20) come from the configuration (SERVER_ALLOWED_HOSTS; loopback only with
 * the local launcher), not from the resources' network addresses in the database: those are host
 * names, and Deno resolves names through DNS only (not /etc/hosts, where clusters often name
 * their nodes), so a list read from the database would refuse honest nodes. The database is read
 * for the challenges only (challenges.ts).
 */
import { almightyEndpoint, commanderEndpoint } from "../../lib/transport/endpoints.ts";
import { runDaemon } from "../../lib/runtime/daemon.ts";
import { AppendiceProxy } from "./proxy.ts";
import { ChallengeChecker } from "./challenges.ts";
import { PushSocket } from "../../lib/transport/zmq.ts";
import { connect } from "../../lib/db/client.ts";
import { serverAllowedHosts, serverBindAddress } from "../../lib/runtime/entry_flags.ts";

export function main(_args: string[]): Promise<number> {
  return runDaemon("appendice_proxy", ({ config, log }) => {
    const toAlmighty = new PushSocket();
    const toCommander = new PushSocket();
    toAlmighty.connect(almightyEndpoint(config));
    toCommander.connect(commanderEndpoint(config));
    const check = /^y/i.test(config.str("APPENDICE_PROXY_CHECK_CHALLENGES").trim());
    const sql = check ? connect(config, { max: 2, applicationName: "appendice_proxy" }) : null;
    const checker = sql ? new ChallengeChecker(sql, { log }) : undefined;
    const proxy = new AppendiceProxy(
      { almighty: (t) => toAlmighty.send(t), commander: (t) => toCommander.send(t) },
      {
        hostname: serverBindAddress(config),
        port: config.int("SERVER_PORT"),
        maxConnections: config.int("APPENDICE_PROXY_MAX_CONNECTIONS"),
        maxConnectionsPerHost: config.int("APPENDICE_PROXY_MAX_CONNECTIONS_PER_HOST"),
        allowed: serverAllowedHosts(config),
        idleTimeoutMs: config.int("APPENDICE_PROXY_IDLE_TIMEOUT") * 1000,
        rejectLogLines: config.int("APPENDICE_PROXY_REJECT_LOG_LINES"),
        rejectLogIntervalMs: config.int("APPENDICE_PROXY_REJECT_LOG_INTERVAL") * 1000,
        checker,
        log,
      },
    );
    log.info("listening on port {port} ({host})", {
      port: proxy.port,
      host: serverBindAddress(config),
    });
    return {
      close: async () => {
        log.info("stopping");
        await proxy.stop();
        await checker?.close();
        await sql?.end({ timeout: 5 });
      },
    };
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
