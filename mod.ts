/**
 * oar-deno's library surface: the protocol, configuration, database access and the shared job
 * and resource operations, for tools that want to drive an OAR database from TypeScript.
 */
export * from "./lib/protocol/mod.ts";
export { Config, ConfigError, DEFAULTS, loadConfig, parseOarConf } from "./lib/runtime/config.ts";
export { connect, connectUrl, dbNow, type Sql } from "./lib/db/client.ts";
export { checkSchema, createSchema, dropSchema } from "./lib/db/schema.ts";
export { type Notifier, RecordingNotifier } from "./lib/transport/notifier.ts";
export { ALL_ENTRIES, permissionFlags } from "./lib/permissions/mod.ts";
