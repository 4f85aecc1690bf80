/**
 * oarsub's options and usage: read by the user's oarsub (which files to read, whether to wait)
 * and by the command server (which does the submission), so both see the same command line.
 */
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

export const OPTIONS = {
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
