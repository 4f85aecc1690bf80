/**
 * Once the round's transaction is committed: the state changes it decided (expired or refused
 * reservations, accepted ones to acknowledge), each through setJobState.
 */
import { setJobState } from "../../../lib/job/jobs.ts";
import type { RoundState } from "./round_state.ts";

export async function applyStateChanges(round: RoundState): Promise<void> {
  for (const c of round.stateChanges) {
    await setJobState(round.sql, round.notifier, c.jobId, c.state, { message: c.message });
  }
}
