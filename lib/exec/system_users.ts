/**
 * Which accounts may not own a job: root, the OAR user, system accounts (below
 * JOB_USER_MIN_UID) and nobody, unless JOB_SYSTEM_USERS_ALLOWED names them. Checked twice, at
 * submission (the command server) and on the node before the job's command runs (oarexec), so a
 * row changed in the database behind the server's back still cannot run a job as root.
 */
import type { Config } from "../runtime/config.ts";

/** nobody / nfsnobody: an unprivileged account, but shared by every daemon that drops to it. */
const NOBODY_MIN_UID = 65534;
const OAR_USERS = new Set(["oar"]);

/** Why `account` may not own a job, or null when it may. */
export function privilegedAccountRefusal(
  account: { name: string; uid: number },
  config: Pick<Config, "str" | "int">,
): string | null {
  const allowed = config.str("JOB_SYSTEM_USERS_ALLOWED").split(/[\s,]+/).filter((s) => s !== "");
  if (allowed.includes(account.name)) return null;
  const minUid = config.int("JOB_USER_MIN_UID");
  if (account.uid === 0) return `jobs of ${account.name} (uid 0) are not allowed`;
  if (OAR_USERS.has(account.name)) return `jobs of the ${account.name} account are not allowed`;
  if (account.uid < minUid || account.uid >= NOBODY_MIN_UID) {
    return `jobs of system account ${account.name} (uid ${account.uid}) are not allowed`;
  }
  return null;
}
