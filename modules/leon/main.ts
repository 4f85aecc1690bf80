/**
 * leon: job deletion (docs/modules.md §6). `leon` is run by almighty; `leon <job_id>` by
 * bipbip_commander on LEONEXTERMINATE.
 */
import { makeLauncher } from "../../lib/launch/launcher.ts";
import { launcherSignaller } from "../../lib/launch/oarexec_signal.ts";
import { leon } from "./leon.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";
import { pingchecker } from "../../lib/resource/pingchecker.ts";

export async function main(args: string[]): Promise<number> {
  return await runOneShot("leon", async (ctx) => {
    const signaller = launcherSignaller(makeLauncher(ctx.config, ctx.log));
    // The node check: the configured pingchecker method, else the built-in one (docs/differences.md
    // §2).
    const unreachable = async (hosts: string[]) =>
      (await pingchecker(hosts, ctx.config, { log: ctx.log })).bad;
    return await leon({ ...ctx, signaller, unreachable }, args);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
