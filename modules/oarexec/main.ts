/**
 * oarexec: runs a job on its head node (docs/modules.md §4.5). Started by bipbip's launcher with
 * the job descriptor on stdin; see modules/oarexec/oarexec.ts for its two modes.
 */
import { oarexecMain } from "./oarexec.ts";

export async function main(args: string[]): Promise<number> {
  return await oarexecMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
