/**
 * The first step of every module: its configuration and its logger. A malformed or unreadable
 * configuration is printed (naming file and line) and the module exits 1, as OAR's do.
 */
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { type Logger, setupLogging } from "./log.ts";

export function startModule(
  name: string,
  given?: Config,
): { config: Config; log: Logger } | null {
  let config: Config;
  try {
    config = given ?? loadConfig();
  } catch (e) {
    console.error(e instanceof ConfigError ? e.message : String(e));
    return null;
  }
  return { config, log: setupLogging(name, config) };
}
