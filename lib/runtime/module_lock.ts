/**
 * One run at a time per module across the whole cluster: sarko and finaud may be started by
 * cron while almighty starts them too, and two overlapping runs must not both frag a job or
 * write an event twice. A PostgreSQL session-level advisory lock, held on a reserved connection
 * for the whole run, decides; it is released when the run ends or, if the process dies, when
 * its connection closes.
 */
import type { Sql } from "../db/client.ts";
import type { Logger } from "./log.ts";

/** First key of our advisory locks ("OAR" in ASCII), the second is the module's. */
const LOCK_CLASS = 0x4f4152;
const MODULE_KEYS: Readonly<Record<string, number>> = {
  sarko: 1,
  finaud: 2,
  node_change_state: 3,
};

/**
 * Runs `body` holding the module's lock; when another run holds it, logs and returns
 * `busyCode` without running `body`. The pool needs one connection beyond what `body` uses.
 */
export async function withModuleLock(
  sql: Sql,
  module: string,
  log: Logger | undefined,
  body: () => Promise<number>,
  busyCode = 0,
): Promise<number> {
  const key = MODULE_KEYS[module];
  if (key === undefined) throw new Error(`no advisory lock key for ${module}`);
  const conn = await sql.reserve();
  try {
    const [{ locked }] = await conn<{ locked: boolean }[]>`
      SELECT pg_try_advisory_lock(${LOCK_CLASS}::int, ${key}::int) AS locked`;
    if (!locked) {
      log?.info("another {module} run is in progress; nothing to do", { module });
      return busyCode;
    }
    try {
      return await body();
    } finally {
      await conn`SELECT pg_advisory_unlock(${LOCK_CLASS}::int, ${key}::int)`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}
