/**
 * The frame every one-shot module (meta_sched, sarko, finaud, leon, node_change_state, bipbip)
 * runs in: configuration, logging, one database pool, a ZeroMQ notifier; the body's exit code is
 * the module's (the API with almighty, docs/modules.md §1.4); everything is closed before
 * returning, so queued notifications are delivered. A configuration or database failure is exit 1
 * with a clear message, as OAR's uncaught exceptions are.
 *
 * With OAR_STANDBY=1 the module gets ready (code loaded, configuration read, database connected)
 * and then waits for almighty's go, which takes its start-up off the scheduling cycle. It
 * acknowledges each go, answers it with the run's exit code on its stdout and waits for the next
 * one, so that almighty may give it further runs (modules/almighty/standby.ts says when); the end of
 * its input ends it.
 */
import type { Config } from "./config.ts";
import { startModule } from "./module_start.ts";
import { connect, describeDbFailure, type Sql } from "../db/client.ts";
import type { Logger } from "./log.ts";
import { ZmqNotifier } from "../transport/zmq_notifier.ts";
import type { Notifier } from "../transport/notifier.ts";
import { envGet } from "./env.ts";
import { encodeStandbyDone, encodeStandbyRunning, readLines, STANDBY_GO } from "../protocol/mod.ts";

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
  const ctx = { config, sql, log, notifier };
  try {
    if (envGet("OAR_STANDBY") !== "1") return (await runOnce(name, ctx, body)).code;
    // Started ahead by almighty (modules/almighty/standby.ts): be ready, then run at each go.
    await sql`SELECT 1`.catch(() => {});
    const input = readLines(Deno.stdin.readable);
    let code = 0;
    while ((await input.next()).value === STANDBY_GO) {
      // Taken: from now on, should this process die, almighty knows the run was under way.
      if (!tellAlmighty(encodeStandbyRunning())) break;
      const run = await runOnce(name, ctx, body);
      code = run.code;
      // As at a process's exit: what the run sent is flushed (within the linger), and what could
      // not be is dropped rather than sent late, after another run (the sockets come back on the
      // next send).
      await notifier.close();
      // After a failure the process is not trusted with another run: the next one starts afresh.
      if (!tellAlmighty(encodeStandbyDone(code, run.failed)) || run.failed) break;
    }
    return code;
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
    await notifier.close();
  }
}

/** Writes a line to almighty (our stdout); false when almighty is gone. */
function tellAlmighty(line: string): boolean {
  try {
    Deno.stdout.writeSync(new TextEncoder().encode(line));
    return true;
  } catch {
    return false;
  }
}

/** One run of the body; a failure is exit 1, logged with where the database was looked for. */
async function runOnce(
  name: string,
  ctx: ModuleContext,
  body: (ctx: ModuleContext) => Promise<number>,
): Promise<{ code: number; failed: boolean }> {
  try {
    return { code: await body(ctx), failed: false };
  } catch (e) {
    const err = e as Error;
    // Which database, and which oar.conf said so, when that is what failed.
    const db = describeDbFailure(e, ctx.config);
    ctx.log.error("{name} failed: {error}", { name, error: db ?? err?.stack ?? String(e) });
    return { code: 1, failed: true };
  }
}
