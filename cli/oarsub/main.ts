/**
 * oarsub, as the user runs it. The user's side reads what only the user may read (the script
 * -S scans, the --array-param-file), opens the notification socket of an interactive job or a
 * reservation, and runs the job's shell as the user; the command server does the submission
 * itself, as the caller the kernel names, with every check (lib/cli/oarsub.ts). Afterwards this
 * side waits as asked (-I, -r, --wait), asking the server for the job's state.
 */
import { callCommandServer } from "../../lib/cli/client.ts";
import { OPTIONS } from "../../lib/cli/oarsub_options.ts";
import { peekArgs } from "../../lib/cli/peek_args.ts";
import { connectJob, interactiveJob, jobStatus, reservationAnswer } from "./interactive.ts";
import { NotificationListener, submissionHostName } from "./listener.ts";

/** How often --wait asks for the job's state. */
const WAIT_POLL_MS = 500;

/** The exit status a finished job's raw wait status stands for (shell conventions). */
export function jobExitStatus(state: string, exitCode: number | null): number {
  if (exitCode === null) return state === "Terminated" ? 0 : 1;
  const signal = exitCode & 0x7f;
  const code = signal === 0 ? (exitCode >> 8) & 0xff : 128 + signal;
  return code === 0 && state === "Error" ? 1 : code;
}

/** Waits for every job to end; says how each ended; the first non-zero exit status. */
async function waitForJobs(ids: number[]): Promise<number> {
  let status = 0;
  for (const id of ids) {
    for (;;) {
      const job = await jobStatus(id);
      if (!job) return 1;
      if (job.state === "Terminated" || job.state === "Error") {
        const s = jobExitStatus(job.state, job.exitCode);
        console.error(`# INFO: job ${id} ended: ${job.state}, exit status ${s}`);
        if (status === 0) status = s;
        break;
      }
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  }
  return status;
}

/** Reads a file the user named, with the user's rights; null when it cannot be read. */
async function readOwnFile(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

export async function main(args: string[]): Promise<number> {
  // The options this side acts on; the server parses the whole line again and reports errors.
  const parsed = peekArgs(args, OPTIONS);
  if (parsed === null) return (await callCommandServer("oarsub", args)).exit;
  const v = parsed.values;
  const str = (name: string) => typeof v[name] === "string" ? v[name] as string : undefined;
  const flag = (name: string) => v[name] === true;
  const command = parsed.positionals[0] ?? null;
  if (flag("help") || flag("version")) return (await callCommandServer("oarsub", args)).exit;
  const connect = str("connect");
  if (connect !== undefined) {
    if (!/^\d{1,10}$/.test(connect.trim())) return (await callCommandServer("oarsub", args)).exit;
    return await connectJob(Number(connect.trim()));
  }
  const files: Record<string, string | null> = {};
  const script = flag("scanscript") && command ? command.trim().split(/\s+/)[0] : undefined;
  if (script !== undefined) files[script] = await readOwnFile(script);
  const paramFile = str("array-param-file");
  if (paramFile !== undefined) files[paramFile] = await readOwnFile(paramFile);
  // -S may turn on -I or -r from the script's #OAR lines: the server says what it submitted.
  const reservation = str("reservation") !== undefined;
  const waits = flag("interactive") || reservation || script !== undefined;
  let listener: NotificationListener | null = null;
  try {
    if (waits) {
      try {
        listener = NotificationListener.open(submissionHostName());
      } catch (e) {
        console.error(`#ERROR: cannot listen for the job's notifications: ${(e as Error).message}`);
        return 1;
      }
    }
    const r = await callCommandServer("oarsub", args, {
      files,
      infoType: listener?.infoType ?? null,
    });
    if (r.exit !== 0) return r.exit;
    const submitted = r.result as { jobIds: number[]; interactive: boolean; reservation: boolean };
    if (!submitted || !Array.isArray(submitted.jobIds)) return r.exit;
    if (submitted.interactive) return await interactiveJob(listener!, submitted.jobIds[0]);
    if (submitted.reservation) return await reservationAnswer(listener!, submitted.jobIds[0]);
    listener?.close();
    listener = null;
    if (flag("wait")) return await waitForJobs(submitted.jobIds);
    return 0;
  } finally {
    listener?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
