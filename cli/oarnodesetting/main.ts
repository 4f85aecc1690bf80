/** oarnodesetting (cli/oarnodesetting/oarnodesetting.ts). */
import { oarnodesettingMain } from "./oarnodesetting.ts";

export function main(args: string[]): Promise<number> {
  return oarnodesettingMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
