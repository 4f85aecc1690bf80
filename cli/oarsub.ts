/** oarsub: submit a job (lib/cli/oarsub.ts). */
import { oarsubMain } from "../lib/cli/oarsub.ts";

export function main(args: string[]): Promise<number> {
  return oarsubMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
