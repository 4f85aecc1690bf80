/**
 * bipbip: launches a job, or handles oarexec's report at its end (spec §4). Run by
 * bipbip_commander as `bipbip <job_id> [<oarexec_exit> <script_exit> <challenge>]`.
 */
import { bipbip } from "../lib/bipbip.ts";
import { makeLauncher } from "../lib/launch/launcher.ts";
import { runOneShot } from "../lib/oneshot.ts";
import { pingchecker } from "../lib/pingchecker.ts";

export async function main(args: string[]): Promise<number> {
  return await runOneShot("bipbip", async (ctx) => {
    const launcher = makeLauncher(ctx.config, ctx.log);
    // The node check: the configured pingchecker method, else the built-in one (DECISIONS §2).
    const unreachable = async (hosts: string[]) =>
      (await pingchecker(hosts, ctx.config, { log: ctx.log })).bad;
    return await bipbip({ ...ctx, launcher, unreachable }, args);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
