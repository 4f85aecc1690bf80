/**
 * The frame every one-shot module (meta_sched, sarko, finaud, leon, node_change_state, bipbip)
 * runs in: configuration, logging, one database pool, a ZeroMQ notifier; the body's exit code is
 * the module's (the API with almighty, spec §1.4); everything is closed before returning, so
 * queued notifications are delivered. A configuration or database failure is exit 1 with a
 * clear message, as OAR's uncaught exceptions are.
 *
 * With OAR_STANDBY=1 the module gets ready (code loaded, configuration read, database connected)
 * and then waits for almighty's go, which takes its start-up off the scheduling cycle.
 */
import type { Config } from "./config.ts";
import { startModule } from "./module_start.ts";
import { connect, dbTarget, describeTarget, type Sql } from "./db/client.ts";
import type { Logger } from "./log.ts";
import { ZmqNotifier } from "./notify.ts";
import type { Notifier } from "./notifier.ts";
import { envGet } from "./env.ts";

/**
 * A standby waits for `go` on its stdin; end of input without it means it is not needed
 * (almighty stopped, or replaced a standby grown old): it leaves without doing anything.
 */
async function goReceived(): Promise<boolean> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64);
  let text = "";
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return false;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      if (text.includes("\n")) return text.startsWith("go\n");
    }
  } catch {
    return false;
  }
}

export interface ModuleContext {
  config: Config;
  sql: Sql;
  log: Logger;
  notifier: Notifier;
}

export async function runOneShot(
  name: string,
  body: (ctx: ModuleContext) => Promise<number>,
  opts: { config?: Config; poolSize?: number } = {},
): Promise<number> {
  const started = startModule(name, opts.config);
  if (!started) return 1;
  const { config, log } = started;
  const sql = connect(config, { max: opts.poolSize ?? 2, applicationName: `oar-${name}` });
  const notifier = new ZmqNotifier(config, log);
  try {
    if (envGet("OAR_STANDBY") === "1") {
      // Started ahead by almighty (lib/almighty/standby.ts): be ready, then wait for the go.
      await sql`SELECT 1`.catch(() => {});
      if (!(await goReceived())) return 0;
    }
    return await body({ config, sql, log, notifier });
  } catch (e) {
    const err = e as Error;
    const where = /ECONNREFUSED|ENOENT|connect/i.test(String(err?.message))
      ? ` (database ${describeTarget(dbTarget(config))})`
      : "";
    log.error("{name} failed{where}: {error}", {
      name,
      where,
      error: err?.stack ?? String(e),
    });
    return 1;
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
    await notifier.close();
  }
}
