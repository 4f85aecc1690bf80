/**
 * oarsub's submission, run by the command server for the caller the kernel named (OAR 3's
 * options, outputs and exit codes; see OARSUB_HELP). The user's side (cli/oarsub/) reads the
 * user's files, and waits for interactive jobs, reservations and --wait, asking
 * lib/cli/oarsub_jobs.ts for the job's state and shell.
 */
import { resolve } from "node:path";
import { resourceColumns } from "../properties/columns.ts";
import { PropertyError } from "../properties/expr.ts";
import {
  checkJobName,
  checkNotify,
  checkOutputFile,
  checkProject,
  checkTypes,
  parseDependency,
  parseReservationDate,
  SubmissionError,
} from "../submission/checks.ts";
import { generateKeyPair } from "../submission/job_key.ts";
import {
  type Moldable,
  parseResourceRequest,
  ResourceRequestError,
} from "../submission/resource_request.ts";
import { scanScript } from "../submission/scan_script.ts";
import { type JobRequest, parseJobProperties, submitJobs } from "../submission/submit.ts";
import { intOption, list, parse } from "./args.ts";
import { OAR_VERSION, OPTIONS } from "./oarsub_options.ts";
import { helpText } from "./options.ts";
import { oarsubConnectMain } from "./oarsub_jobs.ts";
import { lookupAccount } from "../exec/passwd.ts";
import { JOB_COMMAND_MAX_BYTES } from "../protocol/oarexec_descriptor.ts";
import { privilegedAccountRefusal } from "../exec/system_users.ts";
import { callerCwd, currentScope, out, readCallerFile, setResult } from "./scope.ts";
import {
  type CliContext,
  CliError,
  exitStatus,
  parseJobId,
  printError,
  printWarning,
  reportFailure,
  runCli,
} from "./frame.ts";
import { actingUser, isAdmin } from "./identity.ts";

export const OARSUB_HELP = helpText(
  "oarsub",
  "[OPTIONS] [COMMAND]",
  "Submit a job to OAR batch scheduler.",
  OPTIONS,
);

type Values = ReturnType<typeof parse<typeof OPTIONS>>["values"];

/** Options given on the command line win over the script's `#OAR` directives. */
function merge(cli: Values, script: Values): Values {
  const out: Record<string, unknown> = { ...script };
  for (const [k, v] of Object.entries(cli)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out as Values;
}

/** Everything that can be checked without the database. */
interface Parsed {
  values: Values;
  command: string | null;
}

async function parseCommandLine(args: string[]): Promise<Parsed> {
  const { values, positionals } = parse(args, OPTIONS);
  if (positionals.length > 1) {
    throw new CliError(
      `Got unexpected extra argument (${positionals.slice(1).join(" ")}): quote the command`,
      2,
      true,
    );
  }
  let merged = values;
  const command = positionals[0] ?? null;
  if (values.scanscript && !values.help && !values.version) {
    if (!command) throw new CliError("-S needs a script to scan", 2, true);
    const scriptArgs = await scanScript(command.trim().split(/\s+/)[0], readCallerFile);
    merged = merge(values, parse(scriptArgs, OPTIONS, false).values);
  }
  return { values: merged, command };
}

/**
 * OAR 3's default admission rule, and more: root, oar and system accounts own no job unless
 * JOB_SYSTEM_USERS_ALLOWED says so (oarexec checks again on the node).
 */
async function refuseSystemUser(ctx: CliContext, user: string): Promise<void> {
  // A name an admin gave in OARDO_USER may have no account here (the nodes decide); root's uid
  // is 0 wherever it is.
  const account = await lookupAccount(user) ??
    { name: user, uid: user === "root" ? 0 : ctx.config.int("JOB_USER_MIN_UID") };
  const refusal = privilegedAccountRefusal(account, ctx.config);
  if (refusal !== null) {
    throw new SubmissionError(`${refusal} (JOB_SYSTEM_USERS_ALLOWED in oar.conf)`, 1);
  }
}

/** Builds the request from parsed options (reads the columns of `resources`). */
async function buildRequest(
  ctx: CliContext,
  v: Values,
  command: string | null,
  args: string[],
  user: string,
): Promise<JobRequest> {
  const columns = await resourceColumns(ctx.sql);
  const properties = parseJobProperties(v.property, columns);
  const defaults = ctx.config.str("OARSUB_DEFAULT_RESOURCES") || "/resource_id=1";
  const nodesAlias = ctx.config.str("OARSUB_NODES_RESOURCES") || "network_address";
  const requests = list(v.resource);
  const moldables: Moldable[] = (requests.length ? requests : [defaults]).map((r) =>
    parseResourceRequest(r, columns, { defaults, nodesAlias })
  );
  const extraTypes = ctx.config.str("OARSUB_EXTRA_JOB_TYPES").split(/[\s,]+/).filter((t) => t);
  const types = checkTypes(list(v.type), extraTypes);
  const reservationDate = v.reservation !== undefined ? parseReservationDate(v.reservation) : null;
  if (!command && reservationDate === null && !types.includes("noop") && !v.interactive) {
    throw new SubmissionError(
      "Command or interactive flag or advance reservation time or connection directive " +
        "must be provided",
      5,
    );
  }
  if (v.notify !== undefined) checkNotify(v.notify);
  if (v.stdout !== undefined) checkOutputFile("stdout", v.stdout);
  if (v.stderr !== undefined) checkOutputFile("stderr", v.stderr);
  if (v.name !== undefined) checkJobName(v.name);
  if (v.project !== undefined) checkProject(v.project.trim());
  const checkpoint = intOption("--checkpoint", v.checkpoint, { min: 0 }) ?? 0;
  const signal = intOption("--signal", v.signal, { min: 1 }) ?? 12;
  if (signal > 64) throw new CliError("option --signal must be a signal number", 2, true);
  const cmd = v.interactive ? "" : command ?? "";

  let commands = [cmd];
  if (v["array-param-file"] !== undefined) {
    commands = await readArrayParams(v["array-param-file"], cmd);
  } else if (v.array !== undefined) {
    const n = intOption("--array", v.array)!;
    if (n < 1) {
      throw new SubmissionError(
        "An array of job must have a number of sub-jobs greater than 0.",
        6,
      );
    }
    if (n > 100000) throw new SubmissionError("An array of job may have at most 100000 jobs.", 6);
    commands = Array(n).fill(cmd);
  }
  // What oarexec would refuse to read must not reach it (the same limit on both sides).
  for (const c of new Set(commands)) {
    const bytes = new TextEncoder().encode(c).length;
    if (bytes > JOB_COMMAND_MAX_BYTES) {
      throw new SubmissionError(
        `the command is too long (${bytes} bytes, at most ${JOB_COMMAND_MAX_BYTES}): ` +
          `put it in a script`,
        2,
      );
    }
  }
  const cwd = callerCwd();
  let host = currentScope()?.hostname || "localhost";
  if (!currentScope()) {
    try {
      host = Deno.hostname();
    } catch { /* no --allow-sys=hostname */ }
  }
  return {
    user,
    commands,
    jobType: cmd !== "" ? "PASSIVE" : "INTERACTIVE",
    infoType: `${host}:`,
    queue: v.queue?.trim() || null,
    project: v.project?.trim() || "default",
    name: v.name ?? null,
    properties,
    moldables,
    types,
    dependencies: list(v.after).map(parseDependency),
    launchingDirectory: v.directory ? resolve(cwd, v.directory) : cwd,
    stdout: v.stdout ?? null,
    stderr: v.stderr ?? null,
    notify: v.notify ?? null,
    checkpoint,
    signal,
    hold: v.hold ?? false,
    reservationDate,
    initialRequest: args.join(" "),
    defaultWalltime: ctx.config.int("OARSUB_DEFAULT_WALLTIME"),
    limits: isAdmin(user) ? null : {
      maxArray: ctx.config.int("OARSUB_MAX_ARRAY_SIZE"),
      maxWaitingPerUser: ctx.config.int("OARSUB_MAX_WAITING_JOBS_PER_USER"),
      maxWaitingPerQueue: ctx.config.int("OARSUB_MAX_WAITING_JOBS_PER_QUEUE"),
    },
  };
}

async function readArrayParams(path: string, command: string): Promise<string[]> {
  let text: string;
  try {
    text = await readCallerFile(path);
  } catch {
    throw new SubmissionError(`Cannot open the parameter file ${path}`, 12);
  }
  const lines = text.split("\n").filter((l) => !/^#/.test(l) && !/^\s*$/.test(l));
  if (lines.length === 0) {
    throw new SubmissionError("An array of job must have a number of sub-jobs greater than 0.", 6);
  }
  return lines.map((l) => `${command} ${l}`);
}

/**
 * The submission, in the command server: checks, admission, the jobs written, almighty told.
 * What comes after (oarsub -I's shell, -r's verdict, --wait, -C) is the user's oarsub's, which
 * asks for the job's state and shell through cli/oarsub/ (lib/cli/oarsub_jobs.ts answers).
 */
export async function oarsubMain(args: string[]): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = await parseCommandLine(args);
  } catch (e) {
    return submissionFailure(e);
  }
  const { values: v, command } = parsed;
  if (v.help) {
    out(OARSUB_HELP);
    return 0;
  }
  if (v.version) {
    out(`OAR version : ${OAR_VERSION}`);
    return 0;
  }
  if (v.connect !== undefined) {
    // The user's oarsub asks for a valid id's shell itself (oarsub:connect); here, a bad one.
    try {
      return await oarsubConnectMain([String(parseJobId(v.connect))]);
    } catch (e) {
      return submissionFailure(e);
    }
  }
  // The reference: an advance reservation waits for its approval, not for a shell.
  const interactive = (v.interactive ?? false) && v.reservation === undefined;
  if (interactive) {
    if (v["array-param-file"] !== undefined) {
      printError("An array job with parameters given in a file cannot be interactive.");
      return 9;
    }
    if (v.array !== undefined) {
      printError("An array job cannot be interactive.");
      return 8;
    }
    if (command) {
      printWarning(`Asking for an interactive job (-I), so ignoring arguments: ${command} .`);
    }
  }
  if (v.resubmit !== undefined) {
    printError("--resubmit is not supported yet");
    return 1;
  }
  if (v["import-job-key-from-file"] || v["import-job-key-inline"] || v["export-job-key-to-file"]) {
    printError("importing or exporting job keys is not supported: every job gets its own key");
    return 1;
  }
  return await runCli("oarsub", OARSUB_HELP, async (ctx) => {
    try {
      const user = await actingUser();
      await refuseSystemUser(ctx, user);
      const req = await buildRequest(ctx, v, command, args, user);
      // The job names oarsub's socket from the start; an advance reservation waits there for
      // the scheduler's verdict. The user's oarsub opened it and says where it is.
      if (interactive || req.reservationDate !== null) {
        const infoType = currentScope()?.infoType ?? null;
        if (infoType === null || !/^[A-Za-z0-9.:-]{1,255}:\d{1,5}$/.test(infoType)) {
          throw new CliError(
            "an interactive job or a reservation needs oarsub's notification socket",
          );
        }
        req.infoType = infoType;
      }
      const keys = await generateKeyPair();
      const submitted = await submitJobs(ctx.sql, req, keys);
      const ids = submitted.jobIds;
      if (v.json) {
        out(
          JSON.stringify(
            ids.length === 1 ? { job_id: ids[0] } : { job_ids: ids, array_id: submitted.arrayId },
            null,
            2,
          ),
        );
      } else {
        for (const id of ids) out(`OAR_JOB_ID=${id}`);
        if (ids.length > 1) out(`OAR_ARRAY_ID=${submitted.arrayId}`);
      }
      ctx.log.debug("user {user} submitted job(s) {ids}", { user, ids: ids.join(",") });
      ctx.notifier().almighty(interactive ? "Qsub -I" : "Qsub");
      setResult({
        jobIds: ids,
        arrayId: submitted.arrayId,
        interactive,
        reservation: req.reservationDate !== null,
      });
      return 0;
    } catch (e) {
      return submissionFailure(e);
    }
  });
}

function submissionFailure(e: unknown): number {
  if (e instanceof SubmissionError) {
    printError(e.message);
    return exitStatus(e.code);
  }
  if (e instanceof ResourceRequestError) {
    printError(`bad resource request (-l): ${e.message}`);
    return exitStatus(-5);
  }
  if (e instanceof PropertyError) {
    printError(`bad property (-p): ${e.message}`);
    return exitStatus(-5);
  }
  if (e instanceof CliError) return reportFailure(e, OARSUB_HELP);
  throw e;
}
