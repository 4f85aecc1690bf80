/** A command server (modules/command_server/) for a test's configuration, started and ready. */
import { readConfigFile } from "../../lib/runtime/config.ts";
import { type Running, spawnEntry, waitFor } from "./proc.ts";

export async function startCommandServer(conf: string): Promise<Running> {
  const socket = readConfigFile(conf).str("COMMAND_SERVER_SOCKET");
  const server = spawnEntry("command_server", conf);
  let exited = false;
  server.child.status.then(() => (exited = true));
  try {
    await waitFor(`the command server at ${socket}`, async () => {
      if (exited) throw new Error("the command server exited");
      try {
        (await Deno.connect({ transport: "unix", path: socket })).close();
        return true;
      } catch {
        return false;
      }
    }, 20_000);
  } catch (e) {
    await server.stop();
    throw new Error(`${(e as Error).message}; its output:\n${server.output()}`);
  }
  return server;
}
