/**
 * oarexec in INTERACTIVE mode (docs/modules.md §4.5): the job's files, prologue and rendezvous as
 * for a passive job, then no command of its own: the job is the user's shell, which oarsub opens on
 * this node (cli/oarsub/shell.ts). oarexec keeps the job's session file, where every
 * session records itself (lib/exec/sessions.ts), and ends the job:
 *
 *   the `oarsub -I` shell exited           ⇒ 34 (33 if the epilogue failed): Terminated, with
 *                                            the shell's exit status as the job's exit code
 *   USR1 (the reference's oarsub stop)     ⇒ 34 / 33
 *   TERM/INT/QUIT (leon)                   ⇒ 3 / 4: Error
 *   oarsub or its connection gone, or no session began within SESSION_START_TIMEOUT_MS
 *                                          ⇒ 3 / 4: the job is killed, not left to its walltime
 *
 * Whatever ends the job ends its sessions too (`oarsub -C` ones included): their processes are
 * killed. An advance reservation without command (also INTERACTIVE) has no `-I` session: it
 * runs until USR1, leon or its walltime, and only its `-C` sessions are followed.
 */
import type { OarexecDescriptor } from "../../lib/protocol/mod.ts";
import { OarexecExit } from "../../lib/exec/exit_codes.ts";
import { nodeFilePath, removeJobFiles, writePidFile } from "../../lib/exec/job_files.ts";
import { runNodeScript } from "../../lib/exec/node_scripts.ts";
import { lookupAccount } from "../../lib/exec/passwd.ts";
import {
  type Handled,
  processSignals,
  reportJobEnd,
  type RunOptions,
  setUpJobFiles,
} from "../../lib/exec/run.ts";
import { identitySwitch } from "../../lib/exec/user_command.ts";
import { killSessions, sessionFilePath, SessionWatch } from "../../lib/exec/sessions.ts";

/** oarexec's codes for an interactive job stopped on purpose (docs/modules.md §4.5 table). */
export const InteractiveExit = { stopped: 34, stoppedEpilogue: 33 } as const;

/** Time from the rendezvous for `oarsub -I` to open its session (an ssh login included). */
export const SESSION_START_TIMEOUT_MS = 300_000;
const POLL_MS = 500;

export interface InteractiveOptions extends RunOptions {
  sessionStartTimeoutMs?: number;
  pollMs?: number;
}

export async function runInteractiveOarexec(
  d: OarexecDescriptor,
  opts: InteractiveOptions,
): Promise<number> {
  const { log } = opts;
  const jobId = d.job_id;
  const tmp = d.tmp_directory;
  const sessionFile = sessionFilePath(tmp, jobId);
  const ownSession = d.reservation === "None";
  let killed = false;
  let stopped = false;
  let wake: () => void = () => {};
  const onKill = () => {
    if (!killed) log.info("kill requested: ending the interactive job");
    killed = true;
    wake();
  };
  const onStop = () => {
    log.info("stop requested (USR1): ending the interactive job");
    stopped = true;
    wake();
  };
  const ignored = (sig: string) => () => log.info(`${sig}: nothing to do for an interactive job`);
  const handlers: Record<Handled, () => void> = {
    SIGTERM: onKill,
    SIGINT: onKill,
    SIGQUIT: onKill,
    SIGUSR2: ignored("checkpoint"),
    SIGURG: ignored("user signal"),
    SIGTSTP: ignored("suspend"),
    SIGCONT: () => {},
  };
  const removeHandlers = (opts.signals ?? processSignals)(handlers);
  // USR1 is the reference oarsub's way to end an interactive job; only a process of its own
  // (not the agent, which holds many jobs) can be told so.
  if (!opts.signals) Deno.addSignalListener("SIGUSR1", onStop);

  try {
    const setUp = setUpJobFiles(d, log);
    if (setUp !== null) return setUp;
    const nodeFile = nodeFilePath(tmp, jobId);
    const nodeScript = (kind: "prologue" | "epilogue", path: string) =>
      runNodeScript(kind, path, [String(jobId), d.job_user, nodeFile], d.pro_epi_timeout, log);
    if (d.prologue !== "" && !(await nodeScript("prologue", d.prologue))) {
      removeJobFiles(tmp, jobId);
      return OarexecExit.prologue;
    }
    const account = await lookupAccount(d.job_user);
    if (!account || identitySwitch(account) === "impossible") {
      log.info(
        account
          ? `cannot hold a job of ${d.job_user}: oarexec runs as uid ${Deno.uid()}, not root`
          : `user ${d.job_user} does not exist on this node`,
      );
      removeJobFiles(tmp, jobId);
      return OarexecExit.userShell;
    }
    const refusal = opts.refuseAccount(account);
    if (refusal !== null) {
      log.info(`${refusal} on this node (JOB_SYSTEM_USERS_ALLOWED): the job is not run`);
      removeJobFiles(tmp, jobId);
      return OarexecExit.userNotAllowed;
    }
    // The sessions record themselves as the job's user.
    try {
      await Deno.writeTextFile(sessionFile, "", { mode: 0o600 });
      await Deno.chmod(sessionFile, 0o600);
      if (Deno.uid() === 0 && account.uid !== 0) {
        await Deno.chown(sessionFile, account.uid, account.gid);
      }
    } catch (e) {
      log.info(`cannot create the session file ${sessionFile}: ${e}`);
      removeJobFiles(tmp, jobId);
      return OarexecExit.nodeFile;
    }

    await opts.rendezvous();
    if (d.detach_oarexec === 1) {
      log.detach(d.debug_mode > 0 ? `${tmp}/oarexec_${jobId}.log` : null);
      opts.detach();
    }

    let code: number;
    let scriptExit: number | null = null;
    const watch = new SessionWatch(account.uid);
    if (!writePidFile(tmp, jobId, Deno.pid)) {
      log.info(`cannot write the pid file in ${tmp}`);
      code = OarexecExit.pidFile;
    } else {
      const began = Date.now();
      const read = () => {
        try {
          return Deno.readTextFileSync(sessionFile);
        } catch {
          return "";
        }
      };
      while (!killed && !stopped) {
        const s = watch.poll(read);
        if (ownSession && s.state === "waiting") {
          if (Date.now() - began > (opts.sessionStartTimeoutMs ?? SESSION_START_TIMEOUT_MS)) {
            log.info("no interactive session began: killing the job");
            killed = true;
          }
        } else if (s.state === "ended") {
          log.info(`the interactive shell exited with status ${s.status}`);
          scriptExit = (s.status & 0xff) << 8;
          stopped = true;
        } else if (s.state === "lost") {
          log.info(`${s.reason}: killing the job`);
          killed = true;
        }
        if (killed || stopped) break;
        await new Promise<void>((r) => {
          const t = setTimeout(r, opts.pollMs ?? POLL_MS);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
      const n = killSessions(watch);
      if (n > 0) log.info(`killed ${n} process(es) of the job's sessions`);
      const epilogueFailed = d.epilogue !== "" && !(await nodeScript("epilogue", d.epilogue));
      code = killed
        ? (epilogueFailed ? OarexecExit.killedEpilogue : OarexecExit.killed)
        : (epilogueFailed ? InteractiveExit.stoppedEpilogue : InteractiveExit.stopped);
    }
    await Deno.remove(sessionFile).catch(() => {});
    removeJobFiles(tmp, jobId);
    await reportJobEnd(d, code, scriptExit, log, opts.report);
    return code;
  } finally {
    removeHandlers();
    if (!opts.signals) Deno.removeSignalListener("SIGUSR1", onStop);
    log.close();
  }
}
