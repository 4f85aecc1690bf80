/** oardel (lib/cli/oardel.ts). */
import { oardelMain } from "../../lib/cli/oardel.ts";

export function main(args: string[]): Promise<number> {
  return oardelMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
