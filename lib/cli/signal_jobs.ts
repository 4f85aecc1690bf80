/**
 * `oardel -c` (checkpoint) and `oardel -s SIGNAL`: a signal to a Running job's oarexec on its
 * head node, through the configured launcher (docs/modules.md §12.1 signal_oarexec): USR2 makes
 * oarexec send the job's checkpoint signal; URG makes it send the user's signal, written first to
 * `USER_SIGNAL_<id>`. Events CHECKPOINT_SUCCESS/ERROR or SIGNAL_SUCCESS/ERROR record each.
 */
import { out } from "./scope.ts";
import { insertEvent } from "../job/events.ts";
import { getJob } from "../job/jobs.ts";
import { makeLauncher } from "../launch/launcher.ts";
import { headHost } from "../job/checkpoint.ts";
import type { CliContext } from "./frame.ts";
import { printError, printWarning } from "./frame.ts";
import { isAdmin } from "./identity.ts";

/** Signal names or numbers only: the value travels to a shell on the node. */
const SIGNAL_RE = /^(SIG)?[A-Z][A-Z0-9]{0,11}$|^[0-9]{1,2}$/;

export function isValidSignal(s: string): boolean {
  return SIGNAL_RE.test(s);
}

/** Returns OAR's exit code for the batch (0, or the last error's code). */
export async function signalJobs(
  ctx: CliContext,
  ids: number[],
  user: string,
  what: { checkpoint: true } | { signal: string },
): Promise<number> {
  const checkpoint = "checkpoint" in what;
  if (!checkpoint && !isValidSignal(what.signal)) {
    printError(`invalid signal ${JSON.stringify(what.signal)}: a name such as USR1, or a number`);
    return 2;
  }
  const launcher = makeLauncher(ctx.config, ctx.log);
  let code = 0;
  for (const id of ids) {
    const job = await getJob(ctx.sql, id);
    if (!job) {
      printWarning(`The job ${id} does not exist.`);
      code = 7;
      continue;
    }
    if (job.job_user !== user && !isAdmin(user)) {
      printError(`Cannot signal ${id} ; You are not the right user.`);
      code = 1;
      continue;
    }
    if (job.state !== "Running") {
      printWarning(`The job ${id} is not in the Running state.`);
      code = 5;
      continue;
    }
    const host = await headHost(ctx.sql, ctx.config, id);
    const error = checkpoint
      ? await launcher.signalOarexec(host, id, "USR2", { wait: true })
      : await launcher.signalOarexec(host, id, "URG", { wait: true, userSignal: what.signal });
    const kind = checkpoint ? "CHECKPOINT" : "SIGNAL";
    const action = checkpoint ? "checkpoint itself" : `receive the signal ${what.signal}`;
    await insertEvent(ctx.sql, {
      type: `${kind}_${error ? "ERROR" : "SUCCESS"}`,
      jobId: id,
      description: error
        ? `User ${user} could not ask the job ${id} to ${action} on ${host}: ${error}`
        : `User ${user} asked the job ${id} to ${action} on ${host}`,
    });
    if (error) {
      printError(`The job ${id} could not be notified on ${host}: ${error}`);
      code = checkpoint ? 5 : 3;
    } else {
      out(`The job ${id} was notified to ${action} on ${host}.`);
    }
  }
  return code;
}
