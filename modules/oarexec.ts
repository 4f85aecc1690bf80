/**
 * oarexec: runs a job on its head node (spec §4.5). Started by bipbip's launcher with the job
 * descriptor on stdin; see lib/oarexec/main.ts for its two modes.
 */
import { oarexecMain } from "../lib/oarexec/main.ts";

export async function main(args: string[]): Promise<number> {
  return await oarexecMain(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
