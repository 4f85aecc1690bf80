/** What a command body works with, in its own process or in the command server. */
import type { Config } from "../runtime/config.ts";
import type { Sql } from "../db/client.ts";
import type { Logger } from "../runtime/log.ts";
import type { Notifier } from "../transport/notifier.ts";

export interface CliContext {
  config: Config;
  sql: Sql;
  log: Logger;
  /** Created on first use, so read-only commands open no socket. */
  notifier(): Notifier;
}
