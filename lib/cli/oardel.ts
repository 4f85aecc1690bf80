/**
 * oardel: delete jobs (fragJob, then ChState and Qdel to almighty), or with admin options
 * force a job stuck in Finishing (--force-terminate-finishing-job) or toggle the besteffort
 * type of running jobs (-b). Messages and exit codes are OAR's: -1 not the owner (1), -2
 * already being deleted (6), -3 no such job (7); several different errors give 15.
 */
import { out } from "./scope.ts";
import { dbNow } from "../db/client.ts";
import type { Queryable } from "../db/client.ts";
import { insertEvent, inTransaction } from "../job/events.ts";
import { fragJobs, FragResult } from "../job/frag.ts";
import { getJob, getJobTypes } from "../job/jobs.ts";
import { intOption, parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import {
  type CliContext,
  CliError,
  parseJobId,
  printError,
  printWarning,
  runCli,
} from "./frame.ts";
import { actingUser, isAdmin } from "./identity.ts";
import { arrayJobIds, sqlJobIds } from "./job_select.ts";
import { signalJobs } from "./signal_jobs.ts";

export const OARDEL_OPTIONS = {
  array: { type: "string", arg: "ARRAYID", help: "delete every job of an array" },
  sql: {
    type: "string",
    arg: "FILTER",
    help: "delete the jobs matching a filter on the jobs table",
  },
  checkpoint: { type: "boolean", short: "c", help: "send the checkpoint signal to the jobs" },
  signal: { type: "string", short: "s", arg: "SIGNAL", help: "send a signal to the jobs" },
  besteffort: {
    type: "boolean",
    short: "b",
    help: "toggle the besteffort type of running jobs (root/oar)",
  },
  "force-terminate-finishing-job": {
    type: "boolean",
    help: "end jobs stuck in Finishing (root/oar; last resort)",
  },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARDEL_HELP = helpText(
  "oardel",
  "[OPTIONS] [JOB_ID]...",
  "Kill or remove jobs from the waiting queue.",
  OARDEL_OPTIONS,
);

/** OAR's CommandReturns rule: one error code is kept, two different ones make 15. */
export class ExitCodes {
  #code = 0;
  add(code: number): void {
    if (code === 0) return;
    this.#code = this.#code === 0 || this.#code === code ? code : 15;
  }
  get code(): number {
    return this.#code;
  }
}

/** The jobs named by ids, --array or --sql; null (after a warning) when there are none. */
export async function targetJobs(
  ctx: CliContext,
  positionals: string[],
  array: string | undefined,
  filter: string | undefined,
): Promise<number[] | null> {
  if (array !== undefined) {
    const arrayId = intOption("--array", array, { min: 1 })!;
    const ids = await arrayJobIds(ctx.sql, arrayId);
    if (!ids.length) printWarning(`There are no job for this array job (${arrayId})`);
    return ids.length ? ids : null;
  }
  if (filter !== undefined) {
    const ids = await sqlJobIds(ctx.sql, filter);
    if (!ids.length) printWarning(`There are no job for this SQL WHERE clause (${filter})`);
    return ids.length ? ids : null;
  }
  return positionals.map(parseJobId);
}

/** Above this many jobs, oardel prints a summary instead of a line per job. */
const LINE_PER_JOB_MAX = 20;

async function deleteJobs(ctx: CliContext, ids: number[], user: string): Promise<number> {
  const codes = new ExitCodes();
  const unique = [...new Set(ids)];
  const results = await fragJobs(ctx.sql, unique, user);
  const by = (r: FragResult) => [...results].filter(([, v]) => v === r).map(([id]) => id);
  const registered = by(FragResult.ok);
  const notAllowed = by(FragResult.notAllowed);
  const already = by(FragResult.alreadyFragged);
  const missing = by(FragResult.noSuchJob);
  if (results.size <= LINE_PER_JOB_MAX) {
    for (const id of unique) {
      const r = results.get(id);
      if (r === FragResult.ok) out(`Deleting the job = ${id} ...REGISTERED.`);
      else if (r === FragResult.notAllowed) {
        printError(`Cannot frag ${id} ; You are not the right user.`);
      } else if (r === FragResult.alreadyFragged) {
        printWarning(`Cannot frag ${id} ; This job was already killed.`);
      } else printWarning(`Cannot frag ${id} ; Job does not exist.`);
    }
  } else {
    const part = (n: number, what: string) => n ? [`${n} ${what}`] : [];
    out(
      `Deleting ${results.size} jobs: ` + [
        ...part(registered.length, "REGISTERED"),
        ...part(already.length, "already being deleted"),
        ...part(notAllowed.length, "not yours (refused)"),
        ...part(missing.length, "unknown"),
      ].join(", ") + ".",
    );
  }
  if (notAllowed.length) codes.add(1);
  if (already.length) codes.add(6);
  if (missing.length) codes.add(7);
  if (registered.length || already.length) {
    ctx.notifier().almighty("ChState");
    ctx.notifier().almighty("Qdel");
  }
  if (registered.length && results.size <= LINE_PER_JOB_MAX) {
    out(`The job(s) [ ${registered.join(" ")} ] will be deleted in the near future.`);
  }
  return codes.code;
}

async function forceTerminate(ctx: CliContext, ids: number[]): Promise<number> {
  const codes = new ExitCodes();
  const maxDuration = 2 * ctx.config.int("OAR_SSH_CONNECTION_TIMEOUT") +
    ctx.config.int("SERVER_PROLOGUE_EPILOGUE_TIMEOUT");
  for (const id of ids) {
    out(`Force the termination of the job = ${id} ...`);
    const job = await getJob(ctx.sql, id);
    if (job?.state !== "Finishing") {
      printWarning(`The job ${id} is not in the Finishing state.`);
      codes.add(10);
      continue;
    }
    const duration = await durationInState(ctx.sql, id, "Finishing");
    if (duration > maxDuration) {
      await insertEvent(ctx.sql, {
        type: "FORCE_TERMINATE_FINISHING_JOB",
        jobId: id,
        description: `Force to Terminate the job ${id} which is in Finishing state`,
      });
      out("REGISTERED.");
    } else {
      printWarning(
        `The job ${id} is not in the Finishing state for more than ${maxDuration}s ` +
          `(${duration}s).`,
      );
      codes.add(11);
    }
  }
  ctx.notifier().almighty("ChState");
  return codes.code;
}

/** Seconds the job has been in `state` (its open state-log row), 0 if not in it. */
async function durationInState(sql: Queryable, jobId: number, state: string): Promise<number> {
  const now = await dbNow(sql);
  const rows = await sql<{ date_start: number }[]>`
    SELECT date_start FROM job_state_logs
    WHERE job_id = ${jobId} AND job_state = ${state} AND date_stop = 0
    ORDER BY job_state_log_id DESC LIMIT 1`;
  return rows.length ? now - rows[0].date_start : 0;
}

async function toggleBesteffort(ctx: CliContext, ids: number[], user: string): Promise<number> {
  const codes = new ExitCodes();
  for (const id of ids) {
    const job = await getJob(ctx.sql, id);
    if (job?.state !== "Running") {
      printWarning(`The job ${id} is not in the Running state.`);
      codes.add(9);
      continue;
    }
    const isBesteffort = "besteffort" in await getJobTypes(ctx.sql, id);
    await inTransaction(ctx.sql, async (tx) => {
      if (isBesteffort) {
        await tx`DELETE FROM job_types
          WHERE job_id = ${id} AND type = 'besteffort' AND types_index = 'CURRENT'`;
      } else {
        await tx`INSERT INTO job_types (job_id, type) VALUES (${id}, 'besteffort')`;
      }
      await insertEvent(tx, {
        type: isBesteffort ? "DELETE_BESTEFFORT_JOB_TYPE" : "ADD_BESTEFFORT_JOB_TYPE",
        jobId: id,
        description: `User ${user} ${isBesteffort ? "removed" : "added"} the besteffort type.`,
      });
    });
    out(`${isBesteffort ? "Remove" : "Add"} besteffort type for the job ${id}.`);
  }
  ctx.notifier().almighty("ChState");
  return codes.code;
}

export async function oardelMain(args: string[]): Promise<number> {
  return await runCli("oardel", OARDEL_HELP, async (ctx) => {
    const { values, positionals } = parse(args, OARDEL_OPTIONS);
    if (values.help) {
      out(OARDEL_HELP);
      return 0;
    }
    if (values.version) {
      out("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    if (!positionals.length && values.array === undefined && values.sql === undefined) {
      throw new CliError("no job given", 1, true);
    }
    const user = await actingUser();
    const ids = await targetJobs(ctx, positionals, values.array, values.sql);
    if (ids === null) return 4;
    if (values.checkpoint) return await signalJobs(ctx, ids, user, { checkpoint: true });
    if (values.signal !== undefined) {
      return await signalJobs(ctx, ids, user, { signal: values.signal });
    }
    if (values["force-terminate-finishing-job"] || values.besteffort) {
      if (!isAdmin(user)) {
        const opt = values.besteffort ? "--besteffort" : "--force-terminate-finishing-job";
        printError(`You must be oar or root to use the ${opt} option`);
        return 8;
      }
      return values.besteffort
        ? await toggleBesteffort(ctx, ids, user)
        : await forceTerminate(ctx, ids);
    }
    return await deleteJobs(ctx, ids, user);
  });
}
