/**
 * The job's head host: where its oarexec runs, so where bipbip launches it, leon and the
 * watchdogs signal it, and `oarsub -C` opens a shell. One rule for all of them, because a
 * signal sent anywhere else than where the job was launched reaches nobody:
 * COSYSTEM_HOSTNAME for cosystem jobs or jobs without hosts, DEPLOY_HOSTNAME for deploy jobs,
 * else the first host in byte order (docs/differences.md §15).
 */
import type { Config } from "../runtime/config.ts";
import type { Queryable } from "../db/client.ts";
import type { JobTypes } from "../protocol/mod.ts";
import { getJobTypes, jobCurrentHosts } from "./jobs.ts";

/**
 * The rule on what is already read: `hosts` in `sortHosts` order, as `jobCurrentHosts` gives
 * them. For callers that hold the job's types and hosts (bipbip, leon, `oarsub -C`).
 */
export function headHostOf(
  config: Pick<Config, "str">,
  types: JobTypes,
  hosts: readonly string[],
): string {
  if ("cosystem" in types || hosts.length === 0) return config.str("COSYSTEM_HOSTNAME");
  if ("deploy" in types) return config.str("DEPLOY_HOSTNAME");
  return hosts[0];
}

/** The rule on the job's CURRENT types and hosts, read from the database. */
export async function headHost(sql: Queryable, config: Config, jobId: number): Promise<string> {
  const types = await getJobTypes(sql, jobId);
  const hosts = await jobCurrentHosts(sql, jobId);
  return headHostOf(config, types, hosts);
}
