/**
 * The meta-scheduler's energy-saving decisions (docs/modules.md §11 step 10, §10.5), taken after a
 * round from the gantt it has just written, and sent to greta:
 *
 * - halt: Alive hosts that may be halted (0 < available_upto < 2^31-1), idle for more than
 *   SCHEDULER_NODE_MANAGER_IDLE_TIME (last job ended before that, nothing running or started),
 *   with no job planned on them within SCHEDULER_NODE_MANAGER_SLEEP_TIME, and not woken within
 *   the idle time (no WAKEUP_NODE event);
 * - wake: Absent hosts holding a planned job that starts within
 *   SCHEDULER_NODE_MANAGER_WAKEUP_TIME and ends before the host's available_upto.
 */
import type { Config } from "../../lib/runtime/config.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { gretaEndpoint } from "../../lib/transport/endpoints.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { encodeGretaMessage, type GretaMessage } from "../../lib/protocol/mod.ts";
import { PushSocket } from "../../lib/transport/zmq.ts";

export interface EnergyDecisions {
  halt: string[];
  wake: string[];
}

const NEVER = 2147483647;

export function energySavingEnabled(config: Config): boolean {
  return config.str("ENERGY_SAVING_MODE").trim() !== "";
}

export async function energyDecisions(
  sql: Queryable,
  config: Config,
  now: number,
): Promise<EnergyDecisions> {
  const idle = config.int("SCHEDULER_NODE_MANAGER_IDLE_TIME");
  const sleep = config.int("SCHEDULER_NODE_MANAGER_SLEEP_TIME");
  const wakeAhead = config.int("SCHEDULER_NODE_MANAGER_WAKEUP_TIME");
  const halt = await sql<{ h: string }[]>`
    WITH planned AS (
      SELECT gr.resource_id, min(gp.start_time) AS start_time
      FROM gantt_jobs_predictions gp
      JOIN gantt_jobs_resources gr ON gr.moldable_job_id = gp.moldable_job_id
      GROUP BY gr.resource_id
    )
    SELECT r.network_address AS h
    FROM resources r LEFT JOIN planned p ON p.resource_id = r.resource_id
    WHERE r.type = 'default' AND r.network_address <> ''
    GROUP BY r.network_address
    HAVING bool_and(r.state = 'Alive' AND r.next_state = 'UnChanged')
      AND bool_and(r.available_upto > 0 AND r.available_upto < ${NEVER})
      AND max(r.last_job_date) < ${now - idle}
      AND coalesce(min(p.start_time), ${NEVER}) > ${now + sleep}
      AND NOT EXISTS (
        SELECT 1 FROM event_logs e JOIN event_log_hostnames eh ON eh.event_id = e.event_id
        WHERE e.type = 'WAKEUP_NODE' AND eh.hostname = r.network_address
          AND e.date > ${now - idle})
    ORDER BY r.network_address`;
  const wake = await sql<{ h: string }[]>`
    SELECT DISTINCT r.network_address AS h
    FROM gantt_jobs_predictions gp
    JOIN gantt_jobs_resources gr ON gr.moldable_job_id = gp.moldable_job_id
    JOIN moldable_job_descriptions m ON m.moldable_id = gp.moldable_job_id
    JOIN resources r ON r.resource_id = gr.resource_id
    WHERE r.state = 'Absent' AND r.network_address <> ''
      AND gp.start_time <= ${now + wakeAhead}
      AND gp.start_time + m.moldable_walltime <= r.available_upto
    ORDER BY 1`;
  return { halt: halt.map((r) => r.h), wake: wake.map((r) => r.h) };
}

/** The messages greta gets for these decisions: HALT and WAKEUP, or a CHECK when neither. */
export function gretaMessages(d: EnergyDecisions): GretaMessage[] {
  const msgs: GretaMessage[] = [];
  if (d.halt.length) msgs.push({ cmd: "HALT", nodes: d.halt });
  if (d.wake.length) msgs.push({ cmd: "WAKEUP", nodes: d.wake });
  return msgs.length ? msgs : [{ cmd: "CHECK", nodes: [] }];
}

/** Sends them to greta (GRETA_SERVER:GRETA_PORT); delivery is best effort, as OAR's client. */
export async function sendToGreta(
  config: Config,
  msgs: GretaMessage[],
  log?: Logger,
): Promise<void> {
  const push = new PushSocket();
  try {
    push.connect(gretaEndpoint(config));
    for (const m of msgs) await push.send(encodeGretaMessage(m), { timeoutMs: 5000 });
  } catch (e) {
    log?.error("cannot reach greta: {error}", { error: String(e) });
  } finally {
    push.close();
  }
}
