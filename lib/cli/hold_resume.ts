/**
 * oarhold and oarresume: requests written as events (HOLD_WAITING_JOB, HOLD_RUNNING_JOB with
 * -r, RESUME_JOB) that NodeChangeState turns into state changes, then ChState to almighty
 * (docs/modules.md §12.2 hold_job/resume_job; docs/differences.md §7). Codes: -1 no such job, -2
 * not the owner, -3 wrong state, -4 -r or a Suspended job reserved to root/oar
 * (USERS_ALLOWED_HOLD_RESUME=no).
 */
import { out } from "./scope.ts";
import { insertEvent } from "../job/events.ts";
import { getJob, getJobTypes } from "../job/jobs.ts";
import { parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { type CliContext, CliError, printError, runCli } from "./frame.ts";
import { actingUser, isAdmin } from "./identity.ts";
import { targetJobs } from "./oardel.ts";

const SELECTION = {
  array: { type: "string", arg: "ARRAYID", help: "every job of an array" },
  sql: { type: "string", arg: "FILTER", help: "the jobs matching a filter on the jobs table" },
} as const satisfies OptionTable;

const VERSION_HELP = {
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARHOLD_OPTIONS = {
  running: {
    type: "boolean",
    short: "r",
    help: "suspend running jobs (root/oar, or everyone if USERS_ALLOWED_HOLD_RESUME)",
  },
  ...SELECTION,
  ...VERSION_HELP,
} as const satisfies OptionTable;

export const OARRESUME_OPTIONS = { ...SELECTION, ...VERSION_HELP } as const satisfies OptionTable;

export const OARHOLD_HELP = helpText(
  "oarhold",
  "[OPTIONS] [JOB_ID]...",
  "Put jobs on hold: a Waiting job is not scheduled until oarresume; with -r a running job is " +
    "suspended (its processes are frozen).",
  OARHOLD_OPTIONS,
);

export const OARRESUME_HELP = helpText(
  "oarresume",
  "[OPTIONS] [JOB_ID]...",
  "Resume jobs put on hold (Hold becomes Waiting) or suspended (Suspended resumes).",
  OARRESUME_OPTIONS,
);

type Request = "hold" | "resume";

async function request(
  ctx: CliContext,
  kind: Request,
  id: number,
  running: boolean,
  user: string,
): Promise<number> {
  const job = await getJob(ctx.sql, id);
  if (!job) return -1;
  const usersAllowed = ctx.config.bool("USERS_ALLOWED_HOLD_RESUME");
  const admin = isAdmin(user);
  if (kind === "hold") {
    if (running && !usersAllowed && !admin) return -4;
    if (user !== job.job_user && !admin) return -2;
    const ok = job.state === "Waiting" || job.state === "Resuming" ||
      (running && ["toLaunch", "Launching", "Running"].includes(job.state));
    if (!ok) return -3;
    await insertEvent(ctx.sql, {
      type: running ? "HOLD_RUNNING_JOB" : "HOLD_WAITING_JOB",
      jobId: id,
      description: `User ${user} launched oarhold on the job ${id}`,
    });
    return 0;
  }
  if (job.state === "Suspended" && !usersAllowed && !admin) return -4;
  if (user !== job.job_user && !admin) return -2;
  if (job.state !== "Hold" && job.state !== "Suspended") return -3;
  await insertEvent(ctx.sql, {
    type: "RESUME_JOB",
    jobId: id,
    description: `User ${user} launched oarresume on the job ${id}`,
  });
  return 0;
}

const REASONS: Record<Request, Record<number, string>> = {
  hold: {
    [-1]: "this job does not exist.",
    [-2]: "you are not the right user.",
    [-3]: "the job is not in the right state (try '-r' option).",
    [-4]: "only oar or root users can use '-r' option.",
  },
  resume: {
    [-1]: "this job does not exist.",
    [-2]: "you are not the right user.",
    [-3]: "the job is not in the right state.",
    [-4]: "only oar or root users can resume Suspended jobs.",
  },
};

export async function holdResumeMain(kind: Request, args: string[]): Promise<number> {
  const usage = kind === "hold" ? OARHOLD_HELP : OARRESUME_HELP;
  const name = kind === "hold" ? "oarhold" : "oarresume";
  return await runCli(name, usage, async (ctx) => {
    const { values, positionals } = kind === "hold"
      ? parse(args, OARHOLD_OPTIONS)
      : parse(args, OARRESUME_OPTIONS);
    const v = values as Record<string, string | boolean | undefined>;
    if (v.help) {
      out(usage);
      return 0;
    }
    if (v.version) {
      out("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    if (!positionals.length && v.array === undefined && v.sql === undefined) {
      throw new CliError("no job given", 1, true);
    }
    const user = await actingUser();
    const ids = await targetJobs(ctx, positionals, v.array as string, v.sql as string);
    if (ids === null) return 4;
    const running = v.running === true;
    let sent = false;
    for (const id of ids) {
      if (running) {
        const types = await getJobTypes(ctx.sql, id);
        for (const t of ["cosystem", "deploy"]) {
          if (t in types) {
            printError(`This job is of the ${t} type. We cannot suspend this kind of jobs.`);
            return 2;
          }
        }
      }
      const code = await request(ctx, kind, id, running, user);
      if (code !== 0) {
        printError(`/!\\ Cannot ${kind} ${id} : ${REASONS[kind][code]}`);
        if (sent) ctx.notifier().almighty("ChState");
        return 1;
      }
      out(
        `[${id}] ${kind === "hold" ? "Hold" : "Resume"} request was sent to the OAR server.`,
      );
      sent = true;
    }
    if (sent) ctx.notifier().almighty("ChState");
    return 0;
  });
}
