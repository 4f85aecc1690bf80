/**
 * OAREXEC_LOCAL_HOSTS: with the ssh launcher, the hosts whose jobs still run on this host
 * through the local launcher (a server that is also a compute node, or a cluster mixing
 * both). With OAREXEC_LAUNCHER=local every host is local and this list is not needed.
 */
import type { Config } from "../runtime/config.ts";

export function localHosts(config: Config): ReadonlySet<string> {
  return new Set(config.str("OAREXEC_LOCAL_HOSTS").split(/[\s,]+/).filter((h) => h !== ""));
}

/** Whether any job may run through the local launcher under this configuration. */
export function usesLocalLauncher(config: Config): boolean {
  return config.str("OAREXEC_LAUNCHER").trim().toLowerCase() === "local" ||
    localHosts(config).size > 0;
}
