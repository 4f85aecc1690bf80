/**
 * The user's command, run as the job's user (docs/modules.md §4.5): in its launching directory,
 * with stdout/stderr appended to the job's files, under the user's login shell, in a session of
 * its own (so that a kill reaches all it started). When oarexec is root and the user is not,
 * `setpriv` switches uid, gid and supplementary groups; otherwise only oarexec's own user can
 * be run.
 *
 * A fixed wrapper script does the directory change and opens the files as the user, so that
 * permissions are the user's; user strings reach it only as positional parameters, never as
 * shell text. It tells oarexec which step failed with a marker line on its stderr, which is a
 * pipe to oarexec until the wrapper execs the user's shell with stderr on the job's file.
 */
import type { Account } from "./passwd.ts";
import { killSession } from "./process_tree.ts";
import { waitStatus } from "./exit_codes.ts";

const CHDIR_MARK = "OAREXEC_WRAPPER_CANNOT_CHDIR";
const OUTPUT_MARK = "OAREXEC_WRAPPER_CANNOT_OPEN_OUTPUT";

const WRAPPER = [
  `cd -- "$1" 2>/dev/null || { echo ${CHDIR_MARK} >&2; exit 1; }`,
  // `true`, not `:`: a redirection that fails on a special builtin (`:`) makes a POSIX sh
  // exit on the spot, before `||` (the job then ended Terminated, with no event).
  `true 2>/dev/null >>"$2" || { echo ${OUTPUT_MARK} >&2; exit 2; }`,
  `true 2>/dev/null >>"$3" || { echo ${OUTPUT_MARK} >&2; exit 2; }`,
  `exec "$4" -c "$5" </dev/null >>"$2" 2>>"$3"`,
].join("\n");

/** Whether the command must switch user, or cannot be run at all by this oarexec. */
export function identitySwitch(account: Account): "none" | "setpriv" | "impossible" {
  const me = Deno.uid();
  if (me === account.uid) return "none";
  if (me === 0) return "setpriv";
  return "impossible";
}

/** The argv prefix running a program as `account` (nothing when we already are it). */
export function asUser(account: Account): string[] {
  if (identitySwitch(account) !== "setpriv") return [];
  return [
    "setpriv",
    `--reuid=${account.uid}`,
    `--regid=${account.gid}`,
    "--init-groups",
    "--",
  ];
}

export interface UserCommandSpec {
  account: Account;
  launchingDirectory: string;
  stdoutFile: string;
  stderrFile: string;
  command: string;
  /** The whole environment of the command (nothing of oarexec's leaks in). */
  env: Record<string, string>;
}

export interface UserResult {
  /** 0 ran, 10 cannot enter the launching directory, 20 cannot open the output files. */
  base: 0 | 10 | 20;
  /** Raw wait status of the user's shell; null when it never ran. */
  waitStatus: number | null;
}

export class UserProcess {
  readonly pid: number;
  readonly result: Promise<UserResult>;

  constructor(readonly child: Deno.ChildProcess) {
    this.pid = child.pid;
    const marks = (async () => {
      let text = "";
      const decoder = new TextDecoder();
      try {
        for await (const chunk of child.stderr) {
          if (text.length < 4096) text += decoder.decode(chunk, { stream: true });
        }
      } catch { /* closed */ }
      return text;
    })();
    this.result = (async () => {
      const status = await child.status;
      // The pipe closes when the wrapper execs the user's shell (or exits): never later than
      // the wrapper's own exit, unless a stray child of a failed wrapper holds it.
      const text = await Promise.race([
        marks,
        new Promise<string>((r) => setTimeout(() => r(""), 2000)),
      ]);
      if (text.includes(CHDIR_MARK)) return { base: 10, waitStatus: null };
      if (text.includes(OUTPUT_MARK)) return { base: 20, waitStatus: null };
      return { base: 0, waitStatus: waitStatus(status) };
    })();
  }

  /** A signal to the user's shell only (checkpoint, oardel -s). */
  signal(sig: Deno.Signal): boolean {
    try {
      Deno.kill(this.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /** A signal to the whole tree (suspend/resume). */
  signalTree(sig: Deno.Signal): void {
    killSession(this.pid, sig);
  }

  /** SIGKILL to every process of the job's session. */
  killTree(): void {
    killSession(this.pid, "SIGKILL");
  }
}

export function startUserCommand(spec: UserCommandSpec): UserProcess {
  const child = new Deno.Command("setsid", {
    args: [
      ...asUser(spec.account),
      "/bin/sh",
      "-c",
      WRAPPER,
      "oarexec-job",
      spec.launchingDirectory,
      spec.stdoutFile,
      spec.stderrFile,
      spec.account.shell,
      spec.command,
    ],
    clearEnv: true,
    env: spec.env,
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return new UserProcess(child);
}

/**
 * Appends `## OAR [date] <text> ##` to one of the job's output files, as the user (the file
 * is the user's, possibly on a file system root cannot write). Best effort, bounded in time.
 */
export async function appendToUserFile(
  account: Account,
  launchingDirectory: string,
  file: string,
  text: string,
): Promise<void> {
  const stamp = new Date().toISOString().replace("T", " ").slice(0, 19);
  const line = `## OAR [${stamp}] ${text} ##`;
  try {
    const child = new Deno.Command("setsid", {
      args: [
        ...asUser(account),
        "/bin/sh",
        "-c",
        'cd -- "$1" 2>/dev/null && printf "%s\\n" "$3" >>"$2"',
        "oarexec-append",
        launchingDirectory,
        file,
        line,
      ],
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => killSession(child.pid, "SIGKILL"), 10_000);
    await child.status;
    clearTimeout(timer);
  } catch { /* best effort */ }
}
