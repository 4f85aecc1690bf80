/**
 * ZeroMQ endpoints of the server's daemons, from the configuration (docs/modules.md §0, §14).
 * Connecting sides use the configured host names (libzmq resolves them); binding sides use an
 * IPv4 address, as OAR does, because libzmq binds only to addresses or interface names.
 */
import type { Config } from "../runtime/config.ts";

export function almightyEndpoint(config: Config): string {
  return `tcp://${config.str("SERVER_HOSTNAME")}:${config.int("APPENDICE_SERVER_PORT")}`;
}

export function commanderEndpoint(config: Config): string {
  return `tcp://${config.str("BIPBIP_COMMANDER_SERVER")}:${config.int("BIPBIP_COMMANDER_PORT")}`;
}

export function gretaEndpoint(config: Config): string {
  return `tcp://${config.str("GRETA_SERVER")}:${config.int("GRETA_PORT")}`;
}

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The IPv4 address to bind for a host name (localhost needs no resolver). */
export async function bindAddress(host: string): Promise<string> {
  if (host === "*" || IPV4_RE.test(host)) return host;
  if (host === "localhost" || host.startsWith("localhost.")) return "127.0.0.1";
  const [addr] = await Deno.resolveDns(host, "A");
  if (!addr) throw new Error(`cannot resolve ${host} to an IPv4 address`);
  return addr;
}

/** `tcp://<IPv4 of host>:<port>` for a bind. */
export async function bindEndpoint(host: string, port: number): Promise<string> {
  return `tcp://${await bindAddress(host)}:${port}`;
}
