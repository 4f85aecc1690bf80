/**
 * Step 15: every toLaunch job is (re)notified to bipbip_commander, once: those launched this
 * round were as they were launched, those left by an earlier round (a lost message, a companion
 * restarted) are now.
 */
import type { RoundState } from "./round_state.ts";

export async function renotifyToLaunch(round: RoundState): Promise<void> {
  const pending = await round.sql<{ job_id: number }[]>`
    SELECT job_id FROM jobs WHERE state = 'toLaunch' ORDER BY job_id`;
  const notified = new Set(round.launched);
  for (const p of pending) {
    const id = Number(p.job_id);
    if (!notified.has(id)) round.notifier.commander({ job_id: id, cmd: "OARRUN", args: [] });
  }
}
