/**
 * meta_sched (OAR's `kao`): one scheduling round, run by almighty. The exit code is the API
 * (docs/modules.md §11): 0 normal, 1 run again at once, 2 besteffort jobs were fragged (run Leon).
 * With energy saving on and greta run by almighty, the round's halt and wake-up decisions
 * (docs/modules.md §11 step 10) go to greta.
 */
import { dbNow } from "../../lib/db/client.ts";
import { energyDecisions, energySavingEnabled, gretaMessages, sendToGreta } from "./energy.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";
import { metaSchedRound, ROUND_POOL_SIZE } from "./round.ts";
import { makeLauncher } from "../../lib/launch/launcher.ts";
import { launcherSignaller } from "../../lib/launch/oarexec_signal.ts";

export async function main(_args: string[]): Promise<number> {
  return await runOneShot("meta_sched", async ({ config, sql, log, notifier }) => {
    // Besteffort jobs to kill that asked for a checkpoint first are signalled through the
    // configured launcher (lib/job/checkpoint.ts).
    const signaller = launcherSignaller(makeLauncher(config, log));
    const report = await metaSchedRound({ sql, config, log, notifier, signaller });
    log.info("round done: exit {code}, {n} launched, {s} not scheduled ({t})", {
      code: report.exitCode,
      n: report.launched.length,
      s: report.skipped.size,
      t: Object.entries(report.timings).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(", "),
    });
    if (energySavingEnabled(config) && config.bool("ENERGY_SAVING_INTERNAL")) {
      const decisions = await energyDecisions(sql, config, await dbNow(sql));
      if (decisions.halt.length || decisions.wake.length) {
        log.info("energy saving: halt {halt}, wake up {wake}", {
          halt: decisions.halt.join(" ") || "-",
          wake: decisions.wake.join(" ") || "-",
        });
      }
      await sendToGreta(config, gretaMessages(decisions), log);
    }
    return report.exitCode;
  }, { poolSize: ROUND_POOL_SIZE });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
