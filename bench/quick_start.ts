/**
 * The quick-start server a benchmark runs against: `tools/start.ts` (4 hosts × 4 cores, root's
 * jobs allowed) on a fresh var directory and free ports, ready once its command server answers;
 * `stop()` ends it and removes the directory.
 */
import { join } from "node:path";
import { freePortBase } from "../tests/support/server.ts";

const root = new URL("../", import.meta.url).pathname;

export interface QuickStart {
  varDir: string;
  portBase: number;
  stop(): Promise<void>;
}

export async function startQuickStart(prefix: string): Promise<QuickStart> {
  const varDir = await Deno.makeTempDir({ prefix });
  const portBase = await freePortBase();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}tools/start.ts`,
      "--port-base",
      String(portBase),
      "--allow-system-user",
      "root",
    ],
    cwd: root,
    env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGINT");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(varDir, { recursive: true }).catch(() => {});
  };
  const socket = join(varDir, "oar-commands.sock");
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return { varDir, portBase, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error("the server did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
