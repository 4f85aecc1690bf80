/** oarnotify (cli/oarnotify/oarnotify.ts). */
import { oarnotifyMain } from "./oarnotify.ts";

export function main(args: string[]): Promise<number> {
  return oarnotifyMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
