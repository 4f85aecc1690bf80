/**
 * The frame every OAR command runs in: configuration, a small database pool, logging to
 * LOG_FILE, a lazily created ZeroMQ notifier, and OAR's way of reporting (`#ERROR:` and
 * `#WARNING:` lines on stderr, results on stdout). Whatever goes wrong ends as a message and an
 * exit code, never as a stack trace.
 */
import { currentScope, errOut } from "./scope.ts";
import type { CliContext } from "./context.ts";

export type { CliContext };
import { type Config, ConfigError, loadConfig } from "../runtime/config.ts";
import { connect, describeDbFailure } from "../db/client.ts";
import { setupLogging } from "../runtime/log.ts";
import { ZmqNotifier } from "../transport/zmq_notifier.ts";
import { PropertyError } from "../properties/expr.ts";
import { IdentityError } from "./identity.ts";

/** A refusal with OAR's exit code; `usage` adds the command's usage text. */
export class CliError extends Error {
  constructor(message: string, readonly code = 1, readonly usage = false) {
    super(message);
    this.name = "CliError";
  }
}

/** OAR's codes can be negative (Python's exit(-5) is status 251): same status here. */
export function exitStatus(code: number): number {
  return code & 0xff;
}

export function printError(msg: string): void {
  errOut(`#ERROR: ${msg}`);
}

export function printWarning(msg: string): void {
  errOut(`#WARNING: ${msg}`);
}

/**
 * Runs a command body. `usage` is printed after the message of a CliError that asks for it.
 * Returns the exit status.
 */
export async function runCli(
  name: string,
  usage: string,
  body: (ctx: CliContext) => Promise<number>,
): Promise<number> {
  // In the command server: the server's configuration, pool and notifier, shared by requests.
  const scope = currentScope();
  if (scope) {
    try {
      return exitStatus(await body(scope.context));
    } catch (e) {
      return reportFailure(e, usage, scope.context.config);
    }
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    printError(e instanceof ConfigError ? e.message : String(e));
    return 1;
  }
  const log = setupLogging(name, config);
  const sql = connect(config, { max: 2, applicationName: `oar-${name}` });
  let notifier: ZmqNotifier | null = null;
  const ctx: CliContext = {
    config,
    sql,
    log,
    notifier: () => (notifier ??= new ZmqNotifier(config, log)),
  };
  try {
    return exitStatus(await body(ctx));
  } catch (e) {
    return reportFailure(e, usage, config);
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
    if (notifier) await (notifier as ZmqNotifier).close();
  }
}

/** Turns a thrown error into OAR's message and exit status. */
export function reportFailure(e: unknown, usage: string, config?: Config): number {
  if (e instanceof CliError) {
    printError(e.message);
    if (e.usage) errOut(usage);
    return exitStatus(e.code);
  }
  if (e instanceof PropertyError) {
    printError(`bad property expression: ${e.message}`);
    return exitStatus(-5);
  }
  if (e instanceof IdentityError) {
    printError(e.message);
    return 1;
  }
  const err = e as Error;
  const msg = String(err?.message ?? e);
  // A connection or login failure names the database and the file that pointed there.
  printError((config && describeDbFailure(e, config)) ?? msg);
  return 1;
}

/** Parses a job id argument (a positive integer) or refuses it. */
export function parseJobId(s: string): number {
  if (!/^\d+$/.test(s.trim()) || Number(s) <= 0 || Number(s) > 2147483647) {
    throw new CliError(`invalid job id "${s}"`, 1, true);
  }
  return Number(s);
}
