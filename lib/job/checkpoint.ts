/**
 * Asking a running job to checkpoint itself (USR2 to its oarexec, docs/modules.md §12.1), once:
 * sarko does it before a job reaches its walltime, the meta-scheduler before it kills a besteffort
 * job whose resources another job needs (docs/modules.md §11 step 7). The CHECKPOINT event is the
 * claim: a job that has one is not signalled again, whoever asks.
 */
import type { Config } from "../runtime/config.ts";
import type { Queryable } from "../db/client.ts";
import { eventExists, insertEvent, inTransaction } from "./events.ts";
import { headHost } from "./head_host.ts";
import type { Logger } from "../runtime/log.ts";
import type { OarexecSignaller } from "../launch/oarexec_signal.ts";

// lib/cli/signal_jobs.ts still imports the rule from here; it lives in head_host.ts.
export { headHost } from "./head_host.ts";

export interface CheckpointContext {
  sql: Queryable;
  config: Config;
  log: Logger;
  signaller: OarexecSignaller;
}

/**
 * Signals the job to checkpoint unless a CHECKPOINT event says it was already asked; records
 * CHECKPOINT, then CHECKPOINT_SUCCESSFULL or CHECKPOINT_ERROR. `by` names the asker in the
 * events (`sarko`, `meta_sched`).
 */
export async function requestCheckpoint(
  ctx: CheckpointContext,
  id: number,
  by: string,
): Promise<void> {
  const host = await headHost(ctx.sql, ctx.config, id);
  const claimed = await inTransaction(ctx.sql, async (tx) => {
    await tx`SELECT job_id FROM jobs WHERE job_id = ${id} FOR UPDATE`;
    if (await eventExists(tx, id, "CHECKPOINT")) return false;
    await insertEvent(tx, {
      type: "CHECKPOINT",
      jobId: id,
      description: `User oar (${by}) requested a checkpoint on the job:${id} on ${host}`,
    });
    return true;
  });
  if (!claimed) return;
  const tag = by.charAt(0).toUpperCase() + by.slice(1);
  const error = await ctx.signaller.signal(host, id, "USR2");
  if (error !== null) {
    ctx.log.error("checkpoint of job {id} on {host} failed: {error}", { id, host, error });
    await insertEvent(ctx.sql, {
      type: "CHECKPOINT_ERROR",
      jobId: id,
      description: `[${tag}]${error}`,
    });
  } else {
    ctx.log.info("job {id} asked to checkpoint on {host}", { id, host });
    await insertEvent(ctx.sql, {
      type: "CHECKPOINT_SUCCESSFULL",
      jobId: id,
      description: `[${tag}]The job ${id} was notified to checkpoint itself on the node ${host}`,
    });
  }
}

/** The date of the job's first CHECKPOINT event, or null when it was never asked. */
export async function firstCheckpointDate(sql: Queryable, id: number): Promise<number | null> {
  const [row] = await sql<{ first: number | null }[]>`
    SELECT MIN(date) AS first FROM event_logs WHERE job_id = ${id} AND type = 'CHECKPOINT'`;
  return row.first === null ? null : Number(row.first);
}
