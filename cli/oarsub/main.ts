/** oarsub: submit a job (cli/oarsub/oarsub.ts). */
import { oarsubMain } from "./oarsub.ts";

export function main(args: string[]): Promise<number> {
  return oarsubMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
