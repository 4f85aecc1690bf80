/**
 * Finaud, node health polling (docs/modules.md §8): checks the nodes that are Alive, or Suspected
 * by an earlier check, and requests Suspected (FINAUD_ERROR) or Alive (FINAUD_RECOVER) through
 * next_state; NodeChangeState applies the change. Returns 1 when a request was written, else 0.
 */
import type { Config } from "../../lib/runtime/config.ts";
import type { Sql } from "../../lib/db/client.ts";
import { insertEvent, inTransaction } from "../../lib/job/events.ts";
import { FINAL_STATES } from "../../lib/job/states.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import { pingchecker, type PingOutcome } from "../../lib/resource/pingchecker.ts";
import { setResourceNextState } from "../../lib/resource/resources.ts";

export interface FinaudContext {
  sql: Sql;
  config: Config;
  log: Logger;
  /** The node check; `pingchecker` under the configuration by default. */
  check?: (hosts: string[]) => Promise<PingOutcome>;
}

interface Candidate {
  network_address: string;
  state: "Alive" | "Suspected";
}

/**
 * `get_finaud_nodes`: one row per host among default, non desktop-computing resources with no
 * pending change that are Alive or Suspected by Finaud; the host's lowest resource decides its
 * state. With `busyToo` false, hosts holding a resource of an unfinished job are left out.
 */
export async function finaudCandidates(sql: Sql, busyToo: boolean): Promise<Candidate[]> {
  return await sql<Candidate[]>`
    SELECT DISTINCT ON (r.network_address) r.network_address, r.state
    FROM resources r
    WHERE (r.state = 'Alive' OR (r.state = 'Suspected' AND r.finaud_decision = 'YES'))
      AND r.type = 'default' AND r.desktop_computing = 'NO' AND r.next_state = 'UnChanged'
      AND r.network_address <> ''
      AND (${busyToo}::boolean OR r.network_address NOT IN (
        SELECT r2.network_address
        FROM assigned_resources ar
        JOIN resources r2 ON r2.resource_id = ar.resource_id
        JOIN jobs j ON j.assigned_moldable_job = ar.moldable_job_id
        WHERE ar.assigned_resource_index = 'CURRENT'
          AND j.state NOT IN ${sql(FINAL_STATES)}))
    ORDER BY r.network_address, r.resource_id`;
}

/** CHECK_NODES_WITH_RUNNING_JOB, case-insensitive (docs/differences.md §12); unreadable ⇒ no. */
function checkBusyNodes(config: Config, log: Logger): boolean {
  try {
    return config.bool("CHECK_NODES_WITH_RUNNING_JOB");
  } catch (e) {
    log.warn("{error}; busy nodes are not checked", { error: (e as Error).message });
    return false;
  }
}

export async function runFinaud(ctx: FinaudContext): Promise<number> {
  const { sql, config, log } = ctx;
  const candidates = await finaudCandidates(sql, checkBusyNodes(config, log));
  if (candidates.length === 0) {
    log.debug("no node to check");
    return 0;
  }
  const hosts = candidates.map((c) => c.network_address);
  const check = ctx.check ?? ((h: string[]) => pingchecker(h, config, { log }));
  const outcome = await check(hosts);
  if (outcome.error !== undefined) {
    log.error("node check failed, no decision taken: {error}", { error: outcome.error });
    return 0;
  }
  const bad = new Set(outcome.bad);
  let changed = false;
  for (const c of candidates) {
    const host = c.network_address;
    const isBad = bad.has(host);
    if (isBad && c.state === "Alive") {
      if (await request(sql, host, "Alive", "Suspected")) {
        log.warn("node {host} does not respond: Suspected", { host });
        changed = true;
      }
    } else if (!isBad && c.state === "Suspected") {
      if (await request(sql, host, "Suspected", "Alive")) {
        log.warn("node {host} responds again: Alive", { host });
        changed = true;
      }
    }
  }
  return changed ? 1 : 0;
}

/**
 * Writes the next_state request and its event together, provided the host is still as we saw
 * it (in `from`, no pending change): a concurrent change of the node wins over our stale view.
 */
async function request(
  sql: Sql,
  host: string,
  from: "Alive" | "Suspected",
  to: "Alive" | "Suspected",
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    // Only the host's resources Finaud judges: an Absent or Dead resource of the same host
    // (the admin's decision) is left alone.
    const still = await tx<{ resource_id: number }[]>`
      SELECT resource_id FROM resources
      WHERE network_address = ${host} AND state = ${from} AND next_state = 'UnChanged'
        AND (${from} = 'Alive' OR finaud_decision = 'YES')
      ORDER BY resource_id FOR UPDATE`;
    if (still.length === 0) return false;
    for (const r of still) await setResourceNextState(tx, Number(r.resource_id), to, "YES");
    await insertEvent(tx, {
      type: to === "Suspected" ? "FINAUD_ERROR" : "FINAUD_RECOVER",
      jobId: 0,
      description: to === "Suspected"
        ? "Finaud has detected an error on the node"
        : "Finaud has detected that the node comes back",
      hosts: [host],
    });
    return true;
  });
}
