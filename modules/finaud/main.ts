/**
 * oar-finaud: node health polling (docs/modules.md §8), run by almighty and optionally by cron
 * (deploy/cron.d/oar-finaud). Exit 1 when a node state change was requested (almighty then runs
 * node_change_state), else 0 (also when another run holds the lock); 1 as well on a
 * configuration or database failure.
 */
import { runFinaud } from "./finaud.ts";
import { withModuleLock } from "../../lib/runtime/module_lock.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";

export async function main(_args: string[]): Promise<number> {
  return await runOneShot(
    "finaud",
    ({ sql, config, log }) =>
      withModuleLock(sql, "finaud", log, () => runFinaud({ sql, config, log })),
    // One connection holds the run's advisory lock, the others do the work.
    { poolSize: 3 },
  );
}

if (import.meta.main) Deno.exit(await main(Deno.args));
