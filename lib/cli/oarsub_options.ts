/**
 * oarsub's options: read by the user's oarsub (which files to read, whether to wait) and by the
 * command server (which does the submission and prints the help made from this table), so both
 * see the same command line.
 */
import type { OptionTable } from "./options.ts";

export const OAR_VERSION = "3.0.0 (oar-deno)";

export const OPTIONS = {
  queue: { type: "string", short: "q", arg: "QUEUE", help: "destination queue (default: default)" },
  resource: {
    type: "string",
    short: "l",
    multiple: true,
    arg: "RESOURCES",
    help: 'resources, e.g. "/nodes=2/core=4,walltime=1:30:00"; "{sql}/host=1+/licence=2" for ' +
      "groups; repeat -l for moldable alternatives; walltime is hours[:minutes[:seconds]]",
  },
  property: {
    type: "string",
    short: "p",
    arg: "EXPR",
    help: "constraints on resource properties (SQL WHERE syntax)",
  },
  reservation: {
    type: "string",
    short: "r",
    arg: "DATE",
    help: 'advance reservation at "YYYY-MM-DD hh:mm:ss"',
  },
  type: {
    type: "string",
    short: "t",
    multiple: true,
    arg: "TYPE",
    help: "job type: besteffort, idempotent, noop, cosystem, deploy, timesharing=user,name, " +
      "container, inner=ID, token:NAME=N ... (repeatable)",
  },
  after: {
    type: "string",
    short: "a",
    multiple: true,
    arg: "JOBID[,min[,max]]",
    help: "start after the given job (repeatable)",
  },
  array: { type: "string", arg: "N", help: "an array of N identical jobs" },
  "array-param-file": {
    type: "string",
    arg: "FILE",
    help: "an array job: one job per line of FILE, given as arguments",
  },
  name: { type: "string", short: "n", arg: "NAME", help: "job name" },
  stdout: {
    type: "string",
    short: "O",
    arg: "FILE",
    help: "stdout file (%jobid% and %jobname% replaced)",
  },
  stderr: { type: "string", short: "E", arg: "FILE", help: "stderr file" },
  directory: {
    type: "string",
    short: "d",
    arg: "DIR",
    help: "working directory (default: the current directory)",
  },
  project: { type: "string", arg: "PROJECT", help: "project the job belongs to" },
  notify: {
    type: "string",
    arg: "METHOD",
    help: '"mail:addr" or "exec:/path/to/script args", optional [TAGS]',
  },
  checkpoint: {
    type: "string",
    arg: "SECONDS",
    help: "send the checkpoint signal this long before the walltime",
  },
  signal: { type: "string", arg: "NUM", help: "checkpoint signal (default 12, SIGUSR2)" },
  hold: { type: "boolean", help: "submit in the Hold state (oarresume releases it)" },
  scanscript: { type: "boolean", short: "S", help: "read #OAR directives in the script" },
  json: { type: "boolean", short: "J", help: "print the result in JSON" },
  wait: { type: "boolean", help: "block until the job ends; exit with its exit code" },
  interactive: {
    type: "boolean",
    short: "I",
    help: "interactive job: a shell on the job's first node once it starts; the job ends with " +
      "the shell (^C before: deleted)",
  },
  connect: {
    type: "string",
    short: "C",
    arg: "JOBID",
    help: "a shell in a running job of yours, with its environment",
  },
  "use-job-key": {
    type: "boolean",
    short: "k",
    help: "accepted and has no effect: every job gets its own key",
  },
  "import-job-key-from-file": {
    type: "string",
    short: "i",
    arg: "FILE",
    help: "not supported (refused): every job gets its own key",
  },
  "import-job-key-inline": {
    type: "string",
    arg: "KEY",
    help: "not supported (refused): every job gets its own key",
  },
  "export-job-key-to-file": {
    type: "string",
    short: "e",
    arg: "FILE",
    help: "not supported (refused): every job gets its own key",
  },
  resubmit: { type: "string", arg: "JOBID", help: "not supported yet (refused)" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

/** The reference's exit codes for a shell that cannot be opened. */
export const InteractiveExit = {
  interrupted: 1,
  workdir: 2,
  notStarted: 11,
  noop: 17,
  notConnectable: 20,
} as const;

/** `oarsub:status <id>`: what the waiting oarsub needs to know of its job. */
export interface JobStatus {
  state: string;
  reservation: string;
  message: string;
  exitCode: number | null;
  noop: boolean;
}

/** `oarsub:connect <id> <kind>`: what the user's oarsub needs to run the job's shell. */
export interface ShellInfo {
  launcher: "local" | "ssh";
  /** The job's head host. */
  host: string;
  /** OPENSSH_CMD (ssh launcher). */
  sshCommand: string;
  /** The job's private key (ssh launcher, its owner only), offered before the user's own. */
  privateKey: string | null;
  /** The account's login shell and home (local launcher). */
  shell: string;
  home: string;
  user: string;
  /** The job's OAR_* environment, and its session file on the head node. */
  env: Record<string, string>;
  sessionFile: string;
}
