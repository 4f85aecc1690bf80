/**
 * oarsub: submit a batch job (OAR 3's options, outputs and exit codes; see the usage text).
 * Interactive jobs (-I) and connections to running jobs (-C) are cli/oarsub/interactive.ts.
 */
import { resolve } from "node:path";
import { getJob } from "../../lib/job/jobs.ts";
import { resourceColumns } from "../../lib/properties/columns.ts";
import { PropertyError } from "../../lib/properties/expr.ts";
import {
  checkNotify,
  checkOutputFile,
  checkTypes,
  parseDependency,
  parseReservationDate,
  SubmissionError,
} from "../../lib/submission/checks.ts";
import { generateKeyPair } from "../../lib/submission/job_key.ts";
import {
  type Moldable,
  parseResourceRequest,
  ResourceRequestError,
} from "../../lib/submission/resource_request.ts";
import { scanScript } from "../../lib/submission/scan_script.ts";
import { type JobRequest, parseJobProperties, submitJobs } from "../../lib/submission/submit.ts";
import { intOption, list, parse } from "../../lib/cli/args.ts";
import {
  type CliContext,
  CliError,
  exitStatus,
  parseJobId,
  printError,
  printWarning,
  reportFailure,
  runCli,
} from "../../lib/cli/frame.ts";
import { actingUser } from "../../lib/cli/identity.ts";
import { connectJob, interactiveJob, reservationAnswer } from "./interactive.ts";
import { NotificationListener, submissionHostName } from "./listener.ts";

export const OAR_VERSION = "3.0.0 (oar-deno)";

export const OARSUB_USAGE = `Usage: oarsub [OPTIONS] [COMMAND]

Submit a job to OAR batch scheduler.

  -q, --queue QUEUE            destination queue (default: default)
  -l, --resource RESOURCES     resources, e.g. "/nodes=2/core=4,walltime=1:30:00";
                               "{sql}/host=1+/licence=2" for groups; repeat -l for moldable
                               alternatives; walltime is hours[:minutes[:seconds]]
  -p, --property EXPR          constraints on resource properties (SQL WHERE syntax)
  -r, --reservation DATE       advance reservation at "YYYY-MM-DD hh:mm:ss"
  -t, --type TYPE              job type: besteffort, idempotent, noop, cosystem, deploy,
                               timesharing=user,name, container, inner=ID, token:NAME=N ...
  -a, --after JOBID[,min[,max]]  start after the given job
      --array N                an array of N identical jobs
      --array-param-file FILE  an array job: one job per line of FILE, given as arguments
  -n, --name NAME              job name
  -O, --stdout FILE            stdout file (%jobid% and %jobname% replaced)
  -E, --stderr FILE            stderr file
  -d, --directory DIR          working directory (default: the current directory)
      --project PROJECT        project the job belongs to
      --notify METHOD          "mail:addr" or "exec:/path/to/script args", optional [TAGS]
      --checkpoint SECONDS     send the checkpoint signal this long before the walltime
      --signal NUM             checkpoint signal (default 12, SIGUSR2)
      --hold                   submit in the Hold state (oarresume releases it)
  -S, --scanscript             read #OAR directives in the script
  -J, --json                   print the result in JSON
      --wait                   block until the job ends; exit with its exit code
  -I, --interactive            interactive job: a shell on the job's first node once it
                               starts; the job ends with the shell (^C before: deleted)
  -C, --connect JOBID          a shell in a running job of yours, with its environment
  -V, --version                print OAR version
  -h, --help                   show this help`;

const OPTIONS = {
  interactive: { type: "boolean", short: "I" },
  queue: { type: "string", short: "q" },
  resource: { type: "string", short: "l", multiple: true },
  property: { type: "string", short: "p" },
  reservation: { type: "string", short: "r" },
  connect: { type: "string", short: "C" },
  array: { type: "string" },
  "array-param-file": { type: "string" },
  scanscript: { type: "boolean", short: "S" },
  checkpoint: { type: "string" },
  signal: { type: "string" },
  type: { type: "string", short: "t", multiple: true },
  directory: { type: "string", short: "d" },
  project: { type: "string" },
  name: { type: "string", short: "n" },
  after: { type: "string", short: "a", multiple: true },
  notify: { type: "string" },
  "use-job-key": { type: "boolean", short: "k" },
  "import-job-key-from-file": { type: "string", short: "i" },
  "import-job-key-inline": { type: "string" },
  "export-job-key-to-file": { type: "string", short: "e" },
  stdout: { type: "string", short: "O" },
  stderr: { type: "string", short: "E" },
  hold: { type: "boolean" },
  resubmit: { type: "string" },
  json: { type: "boolean", short: "J" },
  wait: { type: "boolean" },
  version: { type: "boolean", short: "V" },
  help: { type: "boolean", short: "h" },
} as const;

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
    const scriptArgs = await scanScript(command.trim().split(/\s+/)[0]);
    merged = merge(values, parse(scriptArgs, OPTIONS, false).values);
  }
  return { values: merged, command };
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
  const types = checkTypes(list(v.type));
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
  if (v.name !== undefined && (v.name.length > 100 || /[\0\n]/.test(v.name))) {
    throw new SubmissionError("invalid job name (at most 100 characters, one line)", 2);
  }
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
  const cwd = Deno.cwd();
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys=hostname */ }
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
  };
}

async function readArrayParams(path: string, command: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new SubmissionError(`Cannot open the parameter file ${path}`, 12);
  }
  const lines = text.split("\n").filter((l) => !/^#/.test(l) && !/^\s*$/.test(l));
  if (lines.length === 0) {
    throw new SubmissionError("An array of job must have a number of sub-jobs greater than 0.", 6);
  }
  return lines.map((l) => `${command} ${l}`);
}

/** The exit status a finished job's raw wait status stands for (shell conventions). */
export function jobExitStatus(state: string, exitCode: number | null): number {
  if (exitCode === null) return state === "Terminated" ? 0 : 1;
  const signal = exitCode & 0x7f;
  const code = signal === 0 ? (exitCode >> 8) & 0xff : 128 + signal;
  return code === 0 && state === "Error" ? 1 : code;
}

/** Polls the jobs' states until all are final; returns the first non-zero exit status. */
async function waitForJobs(ctx: CliContext, ids: number[], pollMs = 500): Promise<number> {
  let status = 0;
  for (const id of ids) {
    for (;;) {
      const job = await getJob(ctx.sql, id);
      if (!job) return 1;
      if (job.state === "Terminated" || job.state === "Error") {
        const s = jobExitStatus(job.state, job.exit_code);
        if (status === 0) status = s;
        break;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  return status;
}

export async function oarsubMain(args: string[]): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = await parseCommandLine(args);
  } catch (e) {
    return submissionFailure(e);
  }
  const { values: v, command } = parsed;
  if (v.help) {
    console.log(OARSUB_USAGE);
    return 0;
  }
  if (v.version) {
    console.log(`OAR version : ${OAR_VERSION}`);
    return 0;
  }
  if (v.connect !== undefined) {
    let id: number;
    try {
      id = parseJobId(v.connect);
    } catch (e) {
      return submissionFailure(e);
    }
    return await runCli("oarsub", OARSUB_USAGE, async (ctx) => {
      return await connectJob(ctx, id, await actingUser());
    });
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
  let listener: NotificationListener | null = null;
  return await runCli("oarsub", OARSUB_USAGE, async (ctx) => {
    try {
      const user = await actingUser();
      const req = await buildRequest(ctx, v, command, args, user);
      // The job names oarsub's socket from the start (a refused request opens none); an
      // advance reservation waits there for the scheduler's verdict.
      if (interactive || req.reservationDate !== null) {
        try {
          listener = NotificationListener.open(submissionHostName());
        } catch (e) {
          throw new CliError(`cannot listen for the job's notifications: ${(e as Error).message}`);
        }
        req.infoType = listener.infoType;
      }
      const keys = await generateKeyPair();
      const submitted = await submitJobs(ctx.sql, req, keys);
      const ids = submitted.jobIds;
      if (v.json) {
        console.log(
          JSON.stringify(
            ids.length === 1 ? { job_id: ids[0] } : { job_ids: ids, array_id: submitted.arrayId },
            null,
            2,
          ),
        );
      } else {
        for (const id of ids) console.log(`OAR_JOB_ID=${id}`);
        if (ids.length > 1) console.log(`OAR_ARRAY_ID=${submitted.arrayId}`);
      }
      ctx.log.debug("user {user} submitted job(s) {ids}", { user, ids: ids.join(",") });
      ctx.notifier().almighty(interactive ? "Qsub -I" : "Qsub");
      if (interactive) return await interactiveJob(ctx, listener!, ids[0], user);
      if (listener) return await reservationAnswer(ctx, listener, ids[0]);
      if (v.wait) return await waitForJobs(ctx, ids);
      return 0;
    } catch (e) {
      return submissionFailure(e);
    } finally {
      listener?.close();
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
  if (e instanceof CliError) return reportFailure(e, OARSUB_USAGE);
  throw e;
}
