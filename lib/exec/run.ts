/**
 * What oarexec does for one job once it holds the descriptor (docs/modules.md §4.5): its files, the
 * node prologue, the rendezvous with bipbip, the user's command and the signals that steer it, the
 * node epilogue, and the report to the server. Returns oarexec's exit code (§4.5 table).
 *
 * Signals (sent by `signal_oarexec`, docs/modules.md §12.1, which sends CONT first):
 *   TERM/INT/QUIT  kill the user's whole process tree, `Job <id> KILLED` in the stderr file ⇒ 3
 *   USR2           checkpoint_signal to the user's process ⇒ 40
 *   URG            the signal named in `<tmp>/USER_SIGNAL_<id>` to the user's process ⇒ 42
 *   TSTP / CONT    SIGSTOP / SIGCONT to the user's whole tree (suspend / resume, docs/differences.md §7)
 */
import { join } from "node:path";
import {
  encodeOarexecReport,
  type OarexecDescriptor,
  REPORT_ACK_TIMEOUT_DEFAULT,
} from "../protocol/mod.ts";
import { finalExitCode, OarexecExit, type Outcome, signalName } from "./exit_codes.ts";
import {
  ensureTmpDirectory,
  nodeFilePath,
  plainFiles,
  removeJobFiles,
  removePidFile,
  resourceFilePath,
  type SmallFiles,
  userSignalFilePath,
  writeJobFiles,
  writePidFile,
} from "./job_files.ts";
import type { OarexecLog } from "./log.ts";
import { endConnections, sessionFilePath } from "./sessions.ts";
import { runNodeScript } from "./node_scripts.ts";
import { type Account, lookupAccount } from "./passwd.ts";
import { deliverReport, type ReportOptions } from "../transport/report.ts";
import {
  appendToUserFile,
  identitySwitch,
  startUserCommand,
  type UserProcess,
} from "./user_command.ts";

export interface RunOptions {
  log: OarexecLog;
  /** Prints the rendezvous line for the launcher (on stdout). */
  rendezvous: () => Promise<void>;
  /** After the rendezvous: close stdio and keep going alone (detach_oarexec=1). */
  detach: () => void;
  report?: ReportOptions;
  /**
   * Where the signals that steer the job come from: by default this process's own signals
   * (one oarexec per job); the agent, which runs many jobs, routes requests to each job's
   * handlers instead. Returns the uninstaller.
   */
  signals?: SignalSource;
  /** How the job's files are written and removed (the agent recycles them). */
  files?: SmallFiles;
  /**
   * Why the job's account may not run a job here (root, oar, system accounts: the node's
   * oar.conf decides, lib/exec/system_users.ts), or null. The database row alone is not trusted.
   */
  refuseAccount: (account: Account) => string | null;
}

export type Handled =
  | "SIGTERM"
  | "SIGINT"
  | "SIGQUIT"
  | "SIGUSR2"
  | "SIGURG"
  | "SIGTSTP"
  | "SIGCONT";

export type SignalSource = (handlers: Record<Handled, () => void>) => () => void;

/** The handlers listen to this process's signals. */
export const processSignals: SignalSource = (handlers) => {
  const installed = Object.entries(handlers) as [Handled, () => void][];
  for (const [sig, fn] of installed) Deno.addSignalListener(sig, fn);
  return () => {
    for (const [sig, fn] of installed) Deno.removeSignalListener(sig, fn);
  };
};

/** `%jobid%` and `%jobname%` in output file names. */
export function outputFileName(
  template: string,
  d: OarexecDescriptor,
  stream: "stdout" | "stderr",
): string {
  const t = template === "" ? `OAR.%jobid%.${stream}` : template;
  return t.replaceAll("%jobid%", String(d.job_id)).replaceAll("%jobname%", d.name ?? "");
}

/** `h:mm:ss`, OAR_JOB_WALLTIME's format. */
export function walltimeText(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

/** The user command's whole environment. */
export function jobEnvironment(
  d: OarexecDescriptor,
  account: Account,
  tmp: string,
  stdoutFile: string,
  stderrFile: string,
): Record<string, string> {
  const nodeFile = nodeFilePath(tmp, d.job_id);
  const resFile = resourceFilePath(tmp, d.job_id);
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: account.home,
    USER: account.name,
    LOGNAME: account.name,
    SHELL: account.shell,
    OAR_JOB_ID: String(d.job_id),
    OAR_JOBID: String(d.job_id),
    OAR_NODEFILE: nodeFile,
    OAR_NODE_FILE: nodeFile,
    OAR_FILE_NODES: nodeFile,
    OAR_RESOURCE_PROPERTIES_FILE: resFile,
    OAR_RESOURCE_FILE: resFile,
    OAR_JOB_WALLTIME_SECONDS: String(d.walltime_seconds),
    OAR_JOB_WALLTIME: walltimeText(d.walltime_seconds),
    OAR_JOB_NAME: d.name ?? "",
    OAR_PROJECT_NAME: d.project,
    OAR_ARRAY_ID: String(d.array_id),
    OAR_ARRAY_INDEX: String(d.array_index),
    OAR_WORKDIR: d.launching_directory,
    OAR_WORKING_DIRECTORY: d.launching_directory,
    OAR_O_WORKDIR: d.launching_directory,
    OAR_USER: d.job_user,
    OAR_STDOUT: stdoutFile,
    OAR_STDERR: stderrFile,
  };
}

export async function runOarexec(d: OarexecDescriptor, opts: RunOptions): Promise<number> {
  const { log } = opts;
  const jobId = d.job_id;
  const tmp = d.tmp_directory;
  const files = opts.files ?? plainFiles;
  const outcome: Outcome = {
    base: 0,
    killed: false,
    checkpointed: false,
    userSignalled: false,
    epilogueFailed: false,
  };
  let proc: UserProcess | null = null;
  let account: Account | null = null;
  let finished = false;
  const retries = new Set<ReturnType<typeof setTimeout>>();
  const stdoutFile = outputFileName(d.stdout_file, d, "stdout");
  const stderrFile = outputFileName(d.stderr_file, d, "stderr");
  const notes = new Set<Promise<void>>();
  const note = (text: string) => {
    if (!account) return;
    const p = appendToUserFile(account, d.launching_directory, stderrFile, text);
    notes.add(p);
    p.finally(() => notes.delete(p));
  };
  const later = (fn: () => void) => {
    const t = setTimeout(() => {
      retries.delete(t);
      fn();
    }, 5000);
    retries.add(t);
  };

  const onKill = () => {
    if (finished) return;
    log.info("kill requested: killing the user's processes");
    const first = !outcome.killed;
    outcome.killed = true;
    if (proc) {
      proc.killTree();
      if (first) note(`Job ${jobId} KILLED`);
    }
  };
  const onCheckpoint = () => {
    if (finished || outcome.killed) return;
    const sig = signalName(d.checkpoint_signal);
    outcome.checkpointed = true;
    if (!proc) return later(onCheckpoint);
    if (sig && proc.signal(sig)) {
      log.info(`checkpoint: sent ${sig} to ${proc.pid}`);
      note(`Job ${jobId} CHECKPOINTED with signal ${d.checkpoint_signal}`);
    }
  };
  const onUserSignal = () => {
    if (finished || outcome.killed) return;
    if (!proc) return later(onUserSignal);
    let text = "";
    try {
      text = Deno.readTextFileSync(userSignalFilePath(tmp, jobId)).trim().split("\n").at(-1) ?? "";
    } catch { /* no file: nothing to send */ }
    const sig = signalName(text);
    if (!sig) {
      log.info(`user signal: no valid signal in ${userSignalFilePath(tmp, jobId)}`);
      return;
    }
    outcome.userSignalled = true;
    if (proc.signal(sig)) note(`Job ${jobId} SIGNALED with ${sig}`);
  };
  const handlers: Record<Handled, () => void> = {
    SIGTERM: onKill,
    SIGINT: onKill,
    SIGQUIT: onKill,
    SIGUSR2: onCheckpoint,
    SIGURG: onUserSignal,
    SIGTSTP: () => proc?.signalTree("SIGSTOP"),
    SIGCONT: () => proc?.signalTree("SIGCONT"),
  };
  const safeHandlers = {} as Record<Handled, () => void>;
  for (const [sig, fn] of Object.entries(handlers) as [Handled, () => void][]) {
    // A handler must never throw into the runtime: that would end oarexec mid-job.
    safeHandlers[sig] = () => {
      try {
        fn();
      } catch (e) {
        log.info(`handling ${sig} failed: ${e}`);
      }
    };
  }
  const removeHandlers = (opts.signals ?? processSignals)(safeHandlers);
  const uninstall = () => {
    removeHandlers();
    for (const t of retries) clearTimeout(t);
  };

  try {
    const setUp = setUpJobFiles(d, log, files);
    if (setUp !== null) return setUp;
    const nodeFile = nodeFilePath(tmp, jobId);
    if (
      d.prologue !== "" &&
      !(await runNodeScript(
        "prologue",
        d.prologue,
        [String(jobId), d.job_user, nodeFile],
        d.pro_epi_timeout,
        log,
      ))
    ) {
      removeJobFiles(tmp, jobId, { files });
      return OarexecExit.prologue;
    }
    account = await lookupAccount(d.job_user);
    if (!account) {
      log.info(`user ${d.job_user} does not exist on this node`);
      removeJobFiles(tmp, jobId, { files });
      return OarexecExit.userShell;
    }
    const refusal = opts.refuseAccount(account);
    if (refusal !== null) {
      log.info(`${refusal} on this node (JOB_SYSTEM_USERS_ALLOWED): the job is not run`);
      removeJobFiles(tmp, jobId, { files });
      return OarexecExit.userNotAllowed;
    }
    if (identitySwitch(account) === "impossible") {
      log.info(`cannot run a job of ${d.job_user}: oarexec runs as uid ${Deno.uid()}, not root`);
      removeJobFiles(tmp, jobId, { files });
      return OarexecExit.userShell;
    }

    await opts.rendezvous();
    if (d.detach_oarexec === 1) {
      log.detach(d.debug_mode > 0 ? join(tmp, `oarexec_${jobId}.log`) : null);
      opts.detach();
    }

    let code: number;
    let scriptExit: number | null = null;
    if (!writePidFile(tmp, jobId, Deno.pid, files)) {
      log.info(`cannot write the pid file in ${tmp}`);
      code = OarexecExit.pidFile;
    } else {
      if (!outcome.killed) {
        log.info(`running the command of job ${jobId} as ${account.name}`);
        proc = startUserCommand({
          account,
          launchingDirectory: d.launching_directory,
          stdoutFile,
          stderrFile,
          command: d.command,
          env: jobEnvironment(d, account, tmp, stdoutFile, stderrFile),
        });
        const r = await proc.result;
        outcome.base = r.base;
        scriptExit = r.waitStatus;
        if (outcome.killed) {
          // Whatever the shell left behind (a background job) goes too.
          proc.killTree();
        }
        log.info(`user command ended: base ${r.base}, wait status ${r.waitStatus ?? "N"}`);
      }
      finished = true;
      const connections = endConnections(sessionFilePath(tmp, jobId), account.uid);
      if (connections > 0) log.info(`killed ${connections} process(es) of oarsub -C sessions`);
      // The user's stderr file gets its KILLED/CHECKPOINTED lines before the job is over.
      await Promise.all(notes);
      if (
        d.epilogue !== "" &&
        !(await runNodeScript(
          "epilogue",
          d.epilogue,
          [String(jobId), d.job_user, nodeFile],
          d.pro_epi_timeout,
          log,
        ))
      ) outcome.epilogueFailed = true;
      code = finalExitCode(outcome);
    }
    finished = true;
    // The pid file stays until the report is delivered (see reportJobEnd).
    removeJobFiles(tmp, jobId, { files, keepPid: true });
    await reportJobEnd(d, code, scriptExit, log, opts.report, files);
    return code;
  } finally {
    finished = true;
    uninstall();
    log.close();
  }
}

/**
 * The end report (docs/modules.md §4.5), delivered until the server acknowledges it. While it is on
 * its way the pid file says this oarexec is still there: sarko ends a Running job whose oarexec is
 * gone (modules/sarko/stuck_jobs.ts), and this one is not. The caller has removed the job's other
 * files (removeJobFiles, keeping the pid file).
 */
export async function reportJobEnd(
  d: OarexecDescriptor,
  code: number,
  scriptExit: number | null,
  log: OarexecLog,
  report?: ReportOptions,
  files: SmallFiles = plainFiles,
): Promise<void> {
  const line = encodeOarexecReport({
    jobId: d.job_id,
    oarexecExit: code,
    scriptExit,
    challenge: d.challenge,
  });
  const reporting = writePidFile(d.tmp_directory, d.job_id, Deno.pid, files);
  const delivered = await deliverReport(d.almighty_hostname, d.almighty_port, line, {
    ackTimeoutMs: (d.report_ack_timeout ?? REPORT_ACK_TIMEOUT_DEFAULT) * 1000,
    ...report,
    onFailure: (n, error, next) =>
      log.info(`cannot notify the server (attempt ${n}: ${error}); retrying in ${next} ms`),
  });
  // The job's other files are gone already (both callers remove them first).
  if (reporting) removePidFile(d.tmp_directory, d.job_id, files);
  log.info(delivered ? `reported exit ${code}` : `gave up reporting exit ${code}`);
}

/** oarexec's directory and the job's node and resource files; oarexec's exit code on failure. */
export function setUpJobFiles(
  d: OarexecDescriptor,
  log: OarexecLog,
  files: SmallFiles = plainFiles,
): number | null {
  const tmp = d.tmp_directory;
  if (!ensureTmpDirectory(tmp)) {
    log.info(`directory ${tmp} does not exist and cannot be created`);
    return OarexecExit.tmpDirectory;
  }
  if (!writeJobFiles(tmp, d, files)) {
    log.info(`cannot write the node or resource file in ${tmp}`);
    removeJobFiles(tmp, d.job_id, { files });
    return OarexecExit.nodeFile;
  }
  return null;
}
