/** oarnodes: resources and their states (lib/cli/oarnodes.ts). */
import { oarnodesMain } from "../lib/cli/oarnodes.ts";

export function main(args: string[]): Promise<number> {
  return oarnodesMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
