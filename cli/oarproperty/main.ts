/** oarproperty (cli/oarproperty/oarproperty.ts). */
import { oarpropertyMain } from "./oarproperty.ts";

export function main(args: string[]): Promise<number> {
  return oarpropertyMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
