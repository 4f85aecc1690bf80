/**
 * Step 9, the `_visu` copy of the Gantt, in its own transaction beside the round's: open from
 * the end of the Gantt's read, so that the rows streamed into the Gantt while scheduling are
 * streamed into its copy too (when the copy held what the Gantt held); its resources written
 * once the Gantt's difference is known, its predictions once the launches are done (a late
 * reservation's start moves then).
 */
import {
  lockVisu,
  openPairsCopy,
  writeVisuPredictions,
  writeVisuResources,
} from "../kamelot/gantt.ts";
import { inTransaction } from "../../../lib/job/events.ts";
import { noJit, type RoundPlan, type RoundState } from "./round_state.ts";

export function openVisuCopy(round: RoundState, plan: RoundPlan): void {
  const { visu } = round;
  visu.done = inTransaction(round.sql, async (vtx) => {
    await noJit(vtx);
    await lockVisu(vtx);
    const vcopy = plan.visuInSync ? await openPairsCopy(vtx, "visu") : null;
    visu.copy.resolve(vcopy);
    const delta = await visu.deltaReady.promise;
    if (vcopy !== null) await vcopy.end();
    await writeVisuResources(vtx, delta, plan.next, plan.visuInSync, plan.streamed);
    await visu.gate.promise;
    await writeVisuPredictions(vtx);
  }).catch((e) => {
    visu.copy.reject(e);
    throw e;
  });
}

/** Once the launches are done: the predictions copied, the transaction committed. */
export async function finishVisuCopy(round: RoundState): Promise<void> {
  round.visu.gate.resolve();
  await round.visu.done;
}

/** On a failed round: the `_visu` transaction rolls back; its own error is this one's consequence. */
export async function abandonVisuCopy(round: RoundState, e: unknown): Promise<void> {
  round.visu.gate.reject(e);
  round.visu.deltaReady.reject(e);
  await round.visu.done?.catch(() => {});
}
