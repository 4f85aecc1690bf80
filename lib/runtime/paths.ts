/**
 * Where oar-deno finds its own files. The project root is the directory holding deno.json; the
 * embedded default keeps its database, sockets and generated config under `<root>/var` unless
 * `OAR_VAR_DIR` names another place.
 *
 * Plain URL and string operations rather than node:path/node:url: every process imports this
 * file, and loading the node modules costs each start-up tens of milliseconds.
 */
import { envGet } from "./env.ts";

/** `lib/..`, from this file's URL. */
export const projectRoot: string = decodeURIComponent(new URL("../..", import.meta.url).pathname)
  .replace(/\/+$/, "") || "/";

export function varDir(): string {
  return envGet("OAR_VAR_DIR") ?? `${projectRoot}/var`;
}

/** The config file that `deno task start` writes for the embedded default. */
export function embeddedConfigFile(): string {
  return `${varDir().replace(/\/+$/, "")}/oar.conf`;
}

/** `dir/name`, without node:path (see above). */
export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}
