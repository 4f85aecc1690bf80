/** oarstat: job information (lib/cli/oarstat.ts). */
import { oarstatMain } from "../../lib/cli/oarstat.ts";

export function main(args: string[]): Promise<number> {
  return oarstatMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
