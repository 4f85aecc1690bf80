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
