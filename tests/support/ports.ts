/**
 * Free TCP ports for tests that need a fixed port number up front (e.g. to hand to a child
 * process). The port is free when returned; another process could still take it before use,
 * which the kernel makes unlikely by not reusing ephemeral ports right away.
 */
export async function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  // Keeps the signature async so a future retry or probe needs no caller change.
  await Promise.resolve();
  return port;
}

/**
 * Binds a ZeroMQ socket to a port the kernel picks on 127.0.0.1 and returns that port. Better
 * than freePort for a socket the test owns: a port found free can be taken, before the bind, as
 * the local port of another test's outgoing connection (seen: EADDRINUSE under a full run).
 */
export function bindLoopback(socket: { bind(endpoint: string): void; lastEndpoint: string }) {
  socket.bind("tcp://127.0.0.1:*");
  return Number(socket.lastEndpoint.slice(socket.lastEndpoint.lastIndexOf(":") + 1));
}

/**
 * An address where nothing listens, for tests of an unreachable oarsub or server. A port freed
 * by closing a listener will not do under parallel tests: the kernel may hand it to another
 * test's listener at once (a CI run saw it). Port 1 is privileged and never handed out.
 */
export const REFUSED_ADDRESS = "127.0.0.1:1";
