/**
 * oar-sarko: the periodic "villains" check (docs/modules.md §7), run by almighty and optionally by
 * cron (deploy/cron.d/oar-sarko). Exit 1 when Leon has work, else 0 (also when another run holds
 * the lock); 1 as well on a configuration or database failure.
 */
import { withModuleLock } from "../../lib/runtime/module_lock.ts";
import { makeLauncher } from "../../lib/launch/launcher.ts";
import { launcherSignaller } from "../../lib/launch/oarexec_signal.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";
import { runSarko } from "./sarko.ts";

export async function main(_args: string[]): Promise<number> {
  return await runOneShot(
    "sarko",
    ({ sql, config, log, notifier }) =>
      withModuleLock(sql, "sarko", log, () =>
        runSarko({
          sql,
          config,
          log,
          notifier,
          signaller: launcherSignaller(makeLauncher(config, log)),
        })),
    // One connection holds the run's advisory lock, the others do the work.
    { poolSize: 3 },
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
