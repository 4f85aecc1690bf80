/** oarnotify (lib/cli/oarnotify.ts). */
import { oarnotifyMain } from "../lib/cli/oarnotify.ts";

export function main(args: string[]): Promise<number> {
  return oarnotifyMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
