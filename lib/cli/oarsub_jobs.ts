/**
 * What oarsub's user side asks the command server once its job is submitted (`-I`, `-r`,
 * `--wait`) or to enter a running job (`-C`): the job's state, its deletion on ^C, and what a
 * shell in it needs. Each answer is checked here, server side, against the caller the kernel
 * named: only the job's owner (or root/oar) may cancel it or open a shell in it, and only the
 * owner gets its private key.
 */
import { getJob, getJobTypes, type Job, jobCurrentHosts } from "../job/jobs.ts";
import { fragJob, FragResult } from "../job/frag.ts";
import { headHostOf } from "../job/head_host.ts";
import { interactiveEnvironment } from "../exec/interactive_env.ts";
import { lookupAccount } from "../exec/passwd.ts";
import { sessionFilePath } from "../exec/sessions.ts";
import type { CliContext } from "./frame.ts";
import { printError, printWarning, runCli } from "./frame.ts";
import { actingUser, isAdmin } from "./identity.ts";
import { out, setResult } from "./scope.ts";
import { InteractiveExit, type JobStatus, type ShellInfo } from "./oarsub_options.ts";

function jobIdArg(args: string[]): number {
  const id = Number(args[0]);
  if (!/^\d{1,10}$/.test(args[0] ?? "") || id <= 0 || id > 2147483647) {
    throw new Error(`invalid job id "${String(args[0]).slice(0, 20)}"`);
  }
  return id;
}

export function oarsubStatusMain(args: string[]): Promise<number> {
  return runCli("oarsub", "", async (ctx) => {
    const id = jobIdArg(args);
    const job = await getJob(ctx.sql, id);
    if (!job) return 1;
    const status: JobStatus = {
      state: job.state,
      reservation: job.reservation,
      message: job.message ?? "",
      exitCode: job.exit_code,
      noop: job.state === "Running" && "noop" in await getJobTypes(ctx.sql, id),
    };
    setResult(status);
    return 0;
  });
}

/** The reference's qdel on ^C: the job is deleted as oardel would (its owner or an admin). */
export function oarsubCancelMain(args: string[]): Promise<number> {
  return runCli("oarsub", "", async (ctx) => {
    const id = jobIdArg(args);
    const user = await actingUser();
    const r = await fragJob(ctx.sql, id, user);
    if (r === FragResult.ok || r === FragResult.alreadyFragged) {
      out(`Deleting the job = ${id} ...REGISTERED.`);
      ctx.notifier().almighty("ChState");
      ctx.notifier().almighty("Qdel");
      return 0;
    }
    printWarning(`Cannot delete the job ${id} (${r})`);
    return 1;
  });
}

/** Whether `user` may open a shell in `job`; prints why not. */
function refusal(job: Job | null, jobId: number, user: string): number | null {
  if (!job) {
    printError(`Job ${jobId} does not exist.`);
    return InteractiveExit.notConnectable;
  }
  let refused = false;
  if (job.state !== "Running") {
    printError(`Job ${jobId} is not running, current state is ${job.state}.`);
    refused = true;
  }
  if (job.job_user !== user && !isAdmin(user)) {
    printError(`User mismatch for job ${jobId} (job user is ${job.job_user}).`);
    refused = true;
  }
  return refused ? InteractiveExit.notConnectable : null;
}

export function oarsubConnectMain(args: string[]): Promise<number> {
  return runCli("oarsub", "", async (ctx) => {
    const id = jobIdArg(args);
    const user = await actingUser();
    const job = await getJob(ctx.sql, id);
    const refused = refusal(job, id, user);
    if (refused !== null || !job) return refused ?? InteractiveExit.notConnectable;
    const info = await shellInfo(ctx, job, user);
    if (info === null) {
      printWarning(" It is not possible to connect to a NOOP job.");
      return InteractiveExit.noop;
    }
    setResult(info);
    return 0;
  });
}

async function shellInfo(ctx: CliContext, job: Job, user: string): Promise<ShellInfo | null> {
  const types = await getJobTypes(ctx.sql, job.job_id);
  if ("noop" in types) return null;
  const head = headHostOf(ctx.config, types, await jobCurrentHosts(ctx.sql, job.job_id));
  const walltime = await ctx.sql<{ w: number }[]>`
    SELECT moldable_walltime AS w FROM moldable_job_descriptions
    WHERE moldable_id = ${job.assigned_moldable_job}`;
  const tmp = ctx.config.str("OAREXEC_DIRECTORY");
  const launcher = ctx.config.str("OAREXEC_LAUNCHER").trim().toLowerCase() === "local"
    ? "local"
    : "ssh";
  // The job's key is its owner's: an admin connecting to someone else's job uses their own.
  let privateKey: string | null = null;
  if (launcher === "ssh" && user === job.job_user) {
    const rows = await ctx.sql<{ k: string }[]>`
      SELECT ssh_private_key AS k FROM challenges WHERE job_id = ${job.job_id}`;
    privateKey = rows[0]?.k ?? null;
  }
  const account = await lookupAccount(user);
  return {
    launcher,
    host: head,
    sshCommand: ctx.config.str("OPENSSH_CMD"),
    privateKey,
    shell: account?.shell ?? "/bin/sh",
    home: account?.home ?? "/",
    user,
    env: interactiveEnvironment(job, walltime.length ? Number(walltime[0].w) : 0, tmp),
    sessionFile: sessionFilePath(tmp, job.job_id),
  };
}
