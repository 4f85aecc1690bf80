/**
 * oar-node-change-state (docs/modules.md §9), run by almighty. Exit 0 nothing to do, 1 nodes or
 * resources changed (almighty runs the scheduler), 2 jobs were fragged (almighty runs Leon); 1 as
 * well on a configuration or database failure.
 */
import { runNodeChangeState } from "./node_change_state.ts";
import { makeLauncher } from "../../lib/launch/launcher.ts";
import { launcherSignaller } from "../../lib/launch/oarexec_signal.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";

export async function main(_args: string[]): Promise<number> {
  return await runOneShot(
    "node_change_state",
    ({ sql, config, log, notifier }) =>
      runNodeChangeState({
        sql,
        config,
        log,
        notifier,
        signaller: launcherSignaller(makeLauncher(config, log)),
      }),
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
