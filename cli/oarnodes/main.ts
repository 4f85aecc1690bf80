/** oarnodes: resources and their states (cli/oarnodes/oarnodes.ts). */
import { oarnodesMain } from "./oarnodes.ts";

export function main(args: string[]): Promise<number> {
  return oarnodesMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
