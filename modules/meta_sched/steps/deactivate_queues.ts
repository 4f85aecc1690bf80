/** Queues whose scheduler cannot run (METASCHEDULER_MODE=external) set notActive. */
import type { Queryable } from "../../../lib/db/client.ts";
import type { RoundState } from "./round_state.ts";

export async function deactivateQueues(round: RoundState, tx: Queryable): Promise<void> {
  if (round.notActive.length > 0) {
    await tx`UPDATE queues SET state = 'notActive' WHERE queue_name IN ${tx(round.notActive)}`;
  }
}
