/**
 * The user's shell in a running job (`oarsub -I` once the job started, `oarsub -C`): the
 * reference's `get_oarexecuser_script_for_oarsub` recreated as a small sh script that exports
 * the job's OAR_* environment, records the session in the job's session file on the head node
 * (lib/exec/sessions.ts), enters the working directory (else exit 2, as the reference)
 * and runs the user's shell; when that shell exits, it records the exit status, which tells the
 * INTERACTIVE oarexec that the job is over.
 *
 * Where it runs: with the local launcher the head node is this host, so the script runs here,
 * a child of oarsub; with the ssh launcher it runs on the head node through OPENSSH_CMD, with
 * the job's key offered first (the reference goes through oarsh and the same key).
 *
 * User strings (job name, directory, project) reach the script only single-quoted.
 */
import { shellQuote } from "../../lib/runtime/shell_quote.ts";
import type { ShellInfo } from "../../lib/cli/oarsub_options.ts";

/** The wrapper tells its caller it could not record the session (an `-I` job cannot run). */
export const REGISTER_FAILED_EXIT = 3;
/** The reference's code for a working directory that cannot be entered. */
export const WORKDIR_EXIT = 2;

export interface SessionScriptOptions {
  env: Record<string, string>;
  /** The job's session file on the head node. */
  sessionFile: string;
  /** `-I` (the job's own session: it must be recorded) or `-C`. */
  kind: "START" | "CONNECT";
}

/**
 * Whether the wrapper's parent (oarsub, or the sshd session) is still there. A killed parent
 * stays a zombie until reaped, which `kill -0` would take for alive: /proc says Z.
 */
const ANCHOR_ALIVE = [
  `oar_anchor_alive() {`,
  `  if [ -d /proc/self ]; then`,
  `    oar_stat=$(cat "/proc/$oar_anchor/stat" 2>/dev/null) || return 1`,
  `    case "\${oar_stat##*") "}" in Z*|X*|"") return 1;; esac`,
  `    return 0`,
  `  fi`,
  `  kill -0 "$oar_anchor" 2>/dev/null`,
  `}`,
];

/** The sh script run on the head node (one `sh -c` argument). */
export function sessionScript(o: SessionScriptOptions): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(o.env)) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) continue;
    lines.push(`${k}=${shellQuote(v)}; export ${k}`);
  }
  lines.push(`oar_session_file=${shellQuote(o.sessionFile)}`);
  // Now, while it is the parent: some shells (dash) re-read $PPID after a reparenting.
  lines.push(`oar_anchor=$PPID`);
  if (o.kind === "START") {
    lines.push(
      // Only the job's oarexec creates the file: without it nobody would end the job.
      `{ [ -f "$oar_session_file" ] && printf 'START %s %s\\n' "$oar_anchor" "$$" >>"$oar_session_file"; } \\`,
      `  2>/dev/null || {`,
      `  echo "#ERROR: cannot record the session in $oar_session_file" >&2`,
      `  exit ${REGISTER_FAILED_EXIT}`,
      `}`,
    );
  } else {
    // A passive job's oarexec keeps no session file: there is nothing to tell it.
    lines.push(
      `[ -f "$oar_session_file" ] && printf 'CONNECT %s %s\\n' "$oar_anchor" "$$" 2>/dev/null \\`,
      `  >>"$oar_session_file"`,
    );
  }
  lines.push(
    `cd -- "$OAR_WORKDIR" 2>/dev/null || {`,
    `  echo "#ERROR: cannot enter working directory: $OAR_WORKDIR" >&2`,
    `  exit ${WORKDIR_EXIT}`,
    `}`,
    // Not exec'd: the exit status has to be recorded once the shell is done.
    `"\${SHELL:-/bin/sh}"`,
    `oar_status=$?`,
    // Only while oarsub (or the ssh session) is still there: a shell that ends because its
    // oarsub or connection is gone is a lost session, which kills the job.
    ...ANCHOR_ALIVE,
    // A connection killed closes the shell's input while its process is still exiting, not
    // yet a zombie: looked at too soon, it passes for alive, and a lost session for a normal
    // end (seen once in CI). An anchor that is really there waits for this script's exit, so
    // a moment's grace costs a normal end nothing but the moment.
    `oar_anchor_alive && sleep 0.1 2>/dev/null`,
    `oar_anchor_alive && [ -f "$oar_session_file" ] \\`,
    `  && printf 'END %s %s\\n' "$$" "$oar_status" 2>/dev/null >>"$oar_session_file"`,
    `exit $oar_status`,
  );
  return lines.join("\n") + "\n";
}

/** Where and how the shell runs: what the command server said (oarsub:connect). */
export type ShellTarget = Omit<ShellInfo, "env" | "sessionFile">;

/** This process's variable, when readable (a permission may not grant it). */
function inherited(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The exit status a shell would show for `status`. */
function statusCode(status: Deno.CommandStatus): number {
  if (status.signal) {
    const n = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }[
      status.signal as string
    ];
    return 128 + (n ?? 0);
  }
  return status.code;
}

/**
 * Runs the session on the head node with this terminal (stdin, stdout, stderr inherited) and
 * returns its exit status. `started` gets the child, so that a signal can end it.
 */
export async function runSession(
  target: ShellTarget,
  script: string,
  started: (child: Deno.ChildProcess) => void = () => {},
): Promise<number> {
  if (target.launcher === "local") {
    const env: Record<string, string> = {
      PATH: inherited("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: target.home,
      USER: target.user,
      LOGNAME: target.user,
      SHELL: target.shell,
    };
    for (const k of ["TERM", "LANG", "LC_ALL", "DISPLAY"]) {
      const v = inherited(k);
      if (v !== undefined) env[k] = v;
    }
    const child = new Deno.Command("sh", {
      args: ["-c", script],
      env,
      clearEnv: true,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    started(child);
    return statusCode(await child.status);
  }
  const [program, ...sshArgs] = target.sshCommand.trim().split(/\s+/);
  let keyFile: string | null = null;
  try {
    if (target.privateKey && target.privateKey.trim() !== "") {
      keyFile = await Deno.makeTempFile({ prefix: "oarsub-key-" });
      await Deno.chmod(keyFile, 0o600);
      await Deno.writeTextFile(keyFile, target.privateKey.replace(/\n?$/, "\n"));
      sshArgs.push("-i", keyFile);
    }
    const tty = Deno.stdin.isTerminal();
    sshArgs.push("-x", tty ? "-t" : "-T", "--", target.host);
    // The login shell on the node replaced by sh, so that sh's parent is the ssh session.
    sshArgs.push(`exec sh -c ${shellQuote(script)}`);
    const child = new Deno.Command(program, {
      args: sshArgs,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    started(child);
    return statusCode(await child.status);
  } finally {
    if (keyFile) await Deno.remove(keyFile).catch(() => {});
  }
}
