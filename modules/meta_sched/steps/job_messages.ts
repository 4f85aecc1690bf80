/** Waiting jobs' messages: as the round writes them, and as `jobs.message` holds them. */
import type { Queryable } from "../../../lib/db/client.ts";
import { fitVarchar } from "../../../lib/job/events.ts";
import { JOB_MESSAGE_MAX } from "../../../lib/job/jobs.ts";
import type { Placement } from "../kamelot/kamelot.ts";
import { karmaText } from "../kamelot/karma.ts";
import { jobMessage, type SchedJobRow } from "../kamelot/requests.ts";
import type { RoundState } from "./round_state.ts";

/** A message as `jobs.message` holds it (what setJobMessage stores too). */
export function storedMessage(text: string): string {
  return fitVarchar(text, JOB_MESSAGE_MAX);
}

/** Whether the job's message, as read this round, is already `text`. */
export function isShown(round: RoundState, id: number, text: string): boolean {
  return round.shown.get(id) === storedMessage(text);
}

/** The message of a job placed now (security time excluded from its walltime). */
export function placedMessage(
  round: RoundState,
  p: Placement,
  row: SchedJobRow,
  rids: number[],
  k?: number,
): string {
  return jobMessage(
    row,
    rids.length,
    p.walltime - round.security,
    false,
    k === undefined ? undefined : karmaText(k),
  );
}

/** Messages of waiting jobs, in one statement; unchanged ones are not rewritten. */
export async function saveMessages(tx: Queryable, messages: Map<number, string>): Promise<void> {
  if (messages.size === 0) return;
  const ids = [...messages.keys()];
  const texts = ids.map((id) => storedMessage(messages.get(id)!));
  await tx`
    UPDATE jobs SET message = x.m
    FROM unnest(${ids}::int[], ${texts}::text[]) AS x(id, m)
    WHERE jobs.job_id = x.id AND jobs.message IS DISTINCT FROM x.m`;
}
