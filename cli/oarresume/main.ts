/**
 * oarresume, as the user runs it: the command line goes to the command server, which acts as the
 * caller the kernel names (lib/cli/client.ts); the work itself is lib/cli/.
 */
import { runRemote } from "../../lib/cli/client.ts";

export function main(args: string[]): Promise<number> {
  return runRemote("oarresume", args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
