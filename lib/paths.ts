/**
 * Where oar-deno finds its own files. The project root is the directory holding deno.json; the
 * embedded default keeps its database, sockets and generated config under `<root>/var` unless
 * `OAR_VAR_DIR` names another place.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { envGet } from "./env.ts";

export const projectRoot: string = dirname(dirname(fileURLToPath(import.meta.url)));

export function varDir(): string {
  return envGet("OAR_VAR_DIR") ?? join(projectRoot, "var");
}

/** The config file that `deno task start` writes for the embedded default. */
export function embeddedConfigFile(): string {
  return join(varDir(), "oar.conf");
}
