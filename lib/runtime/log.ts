/**
 * Logging through logtape: one category per module (`oar.modules.<name>`), written to
 * `LOG_FILE` (`:stderr:` or a path, appended) at OAR's `LOG_LEVEL` (1 errors, 2 adds warnings
 * and information, 3 adds debug).
 */
import {
  configureSync,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
  type Sink,
} from "@logtape/logtape";
import type { Config } from "./config.ts";

export type { Logger };

/** OAR's LOG_LEVEL to the lowest logtape level written. */
export function logLevelFor(oarLevel: number): LogLevel {
  if (oarLevel <= 1) return "error";
  if (oarLevel === 2) return "info";
  return "debug";
}

const formatter = getTextFormatter({ timestamp: "date-time-tz", category: "." });

/** A sink appending formatted lines to a file (or stderr), synchronously so nothing is lost. */
function fileSink(path: string): Sink {
  const encoder = new TextEncoder();
  if (path === ":stderr:" || path === "") {
    return (record: LogRecord) => {
      Deno.stderr.writeSync(encoder.encode(formatter(record)));
    };
  }
  const file = Deno.openSync(path, { append: true, create: true });
  return (record: LogRecord) => {
    file.writeSync(encoder.encode(formatter(record)));
  };
}

/**
 * Sets up logging for a module from its configuration. Falls back to stderr (with a warning)
 * when LOG_FILE cannot be opened: a daemon must not die because its log file is unwritable.
 */
export function setupLogging(module: string, config: Config): Logger {
  const path = config.str("LOG_FILE");
  let level: LogLevel;
  try {
    level = logLevelFor(config.int("LOG_LEVEL"));
  } catch {
    level = "info";
  }
  let sink: Sink;
  let fallback: string | null = null;
  try {
    sink = fileSink(path);
  } catch (e) {
    sink = fileSink(":stderr:");
    fallback = `cannot open LOG_FILE ${path} (${(e as Error).message}); logging to stderr`;
  }
  resetSync();
  configureSync({
    sinks: { main: sink },
    loggers: [
      { category: ["oar"], sinks: ["main"], lowestLevel: level },
      { category: ["logtape", "meta"], sinks: ["main"], lowestLevel: "warning" },
    ],
  });
  const logger = moduleLogger(module);
  if (fallback) logger.warn(fallback);
  return logger;
}

export function moduleLogger(module: string): Logger {
  return getLogger(["oar", "modules", module]);
}
