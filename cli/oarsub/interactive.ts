/**
 * oarsub's interactive side: `oarsub -I` waits on its socket for the job to start, then opens
 * the user's shell in it; `oarsub -C <id>` opens a shell in a Running job. Exit codes are the
 * reference's: 11 the job did not start (BAD JOB, ERROR, killed), 17 noop job, 20 not
 * connectable (not Running, someone else's), 2 working directory; otherwise the shell's own
 * exit status. Ctrl-C (or a hangup, or TERM) while waiting deletes the job, exit 1.
 */
import { callCommandServer } from "../../lib/cli/client.ts";
import { InteractiveExit, type JobStatus, type ShellInfo } from "../../lib/cli/oarsub_options.ts";
import { classifyNotification, endsWait, NotificationFilter } from "./notifications.ts";
import type { NotificationListener } from "./listener.ts";
import { runSession, sessionScript } from "./shell.ts";

export { InteractiveExit };

function printError(msg: string): void {
  console.error(`#ERROR: ${msg}`);
}

function printWarning(msg: string): void {
  console.error(`#WARNING: ${msg}`);
}

/** The job's state, asked of the command server; null when it cannot say. */
export async function jobStatus(jobId: number): Promise<JobStatus | null> {
  const r = await callCommandServer("oarsub:status", [String(jobId)]);
  return r.exit === 0 ? (r.result as JobStatus) : null;
}

/** The reference's qdel on ^C: the server deletes the job as oardel would. */
async function cancelJob(jobId: number): Promise<void> {
  await callCommandServer("oarsub:cancel", [String(jobId)]);
}

/** How often the wait looks at the job itself (a notification may never come). */
const STATE_POLL_MS = 2000;

function info(msg: string): void {
  console.error(`# INFO: ${msg}`);
}

type WaitEvent =
  | { kind: "line"; line: string }
  | { kind: "poll" }
  | { kind: "signal"; signal: Deno.Signal }
  | { kind: "closed" };

/** A queue the waiting loop takes its events from, whatever their source. */
class Events {
  #queue: WaitEvent[] = [];
  #wake = null as (() => void) | null;
  push(e: WaitEvent): void {
    this.#queue.push(e);
    this.#wake?.();
  }
  async next(): Promise<WaitEvent> {
    while (this.#queue.length === 0) {
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = null;
    }
    return this.#queue.shift()!;
  }
}

const INTERRUPTS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * `oarsub -I` after the submission: waits for the job to start, then opens the shell.
 * `listener` is the socket whose address is in the job's info_type.
 */
export async function interactiveJob(
  listener: NotificationListener,
  jobId: number,
): Promise<number> {
  info("Interactive mode: waiting...");
  const events = new Events();
  const onSignal: Partial<Record<Deno.Signal, () => void>> = {};
  for (const s of INTERRUPTS) {
    onSignal[s] = () => events.push({ kind: "signal", signal: s });
    Deno.addSignalListener(s, onSignal[s]!);
  }
  const poll = setInterval(() => events.push({ kind: "poll" }), STATE_POLL_MS);
  const reading = (async () => {
    for await (const line of listener.lines()) events.push({ kind: "line", line });
    events.push({ kind: "closed" });
  })();
  const filter = new NotificationFilter();
  let outcome: "started" | number;
  try {
    outcome = await (async () => {
      for (;;) {
        const e = await events.next();
        if (e.kind === "line") {
          const n = classifyNotification(e.line);
          const shown = filter.show(n);
          if (shown !== null) info(shown);
          if (!endsWait(n)) continue;
          return n.kind === "good" ? "started" : InteractiveExit.notStarted;
        }
        if (e.kind === "signal") {
          if (e.signal === "SIGINT") console.log("Caught Interrupt (^C), cancelling job(s)...");
          else console.log(`Caught ${e.signal}, cancelling job(s)...`);
          await cancelJob(jobId);
          return InteractiveExit.interrupted;
        }
        if (e.kind === "closed") {
          printError("the notification socket closed");
          await cancelJob(jobId);
          return InteractiveExit.notStarted;
        }
        const verdict = await stateVerdict(jobId);
        if (verdict !== null) return verdict;
      }
    })();
  } finally {
    clearInterval(poll);
    for (const s of INTERRUPTS) Deno.removeSignalListener(s, onSignal[s]!);
    listener.close();
    await reading;
  }
  if (outcome !== "started") return outcome;
  return await connectJob(jobId, "START");
}

/** While waiting: whether the job's own state already settles the outcome. */
async function stateVerdict(jobId: number): Promise<number | null> {
  const job = await jobStatus(jobId);
  if (!job) {
    printError(`job ${jobId} disappeared`);
    return InteractiveExit.notStarted;
  }
  if (job.state === "Error" || job.state === "Terminated") {
    printError(
      `job ${jobId} ended (${job.state}) before it started${job.message ? `: ${job.message}` : ""}`,
    );
    return InteractiveExit.notStarted;
  }
  if (job.noop) {
    printWarning(" It is not possible to connect to a NOOP job.");
    return InteractiveExit.noop;
  }
  return null;
}

/**
 * `oarsub -C <id>` (kind CONNECT), and the shell of `oarsub -I` (kind START): a shell in the
 * Running job on its head node, with the job's environment. Returns the exit status.
 */
export async function connectJob(
  jobId: number,
  kind: "START" | "CONNECT" = "CONNECT",
): Promise<number> {
  // The server checks that the caller may (its job, Running, not noop) and says how.
  const r = await callCommandServer("oarsub:connect", [String(jobId)]);
  if (r.exit !== 0) return r.exit;
  const target = r.result as ShellInfo;
  const head = target.host;
  const launcher = target.launcher;
  const script = sessionScript({ env: target.env, sessionFile: target.sessionFile, kind });
  console.log(`Connect to OAR job ${jobId} via the node ${head}`);
  // The shell owns the terminal: ^C is for it. A hangup or TERM ends it (and so the session).
  let child: Deno.ChildProcess | null = null;
  const ignore = () => {};
  const hangup = () => {
    try {
      child?.kill("SIGHUP");
    } catch { /* gone */ }
  };
  Deno.addSignalListener("SIGINT", ignore);
  Deno.addSignalListener("SIGTERM", hangup);
  Deno.addSignalListener("SIGHUP", hangup);
  let status: number;
  try {
    status = await runSession(target, script, (c) => (child = c));
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
    Deno.removeSignalListener("SIGTERM", hangup);
    Deno.removeSignalListener("SIGHUP", hangup);
  }
  if (launcher === "ssh" && status === 255) printError("Job was terminated.");
  if (kind === "START") info(`Disconnected from OAR job ${jobId}`);
  return status;
}

/**
 * `oarsub -r` after the submission: the meta-scheduler tells the submitter whether it granted
 * the reservation (GOOD RESERVATION) or not (its reasons, then BAD JOB), as in the reference.
 * The job's own state settles it too, should a notification be lost. 0 granted, 1 refused.
 */
export async function reservationAnswer(
  listener: NotificationListener,
  jobId: number,
): Promise<number> {
  info("Waiting for the validation of the reservation...");
  const events = new Events();
  const poll = setInterval(() => events.push({ kind: "poll" }), STATE_POLL_MS);
  const reading = (async () => {
    for await (const line of listener.lines()) events.push({ kind: "line", line });
    events.push({ kind: "closed" });
  })();
  try {
    for (;;) {
      const e = await events.next();
      if (e.kind === "line") {
        // Anyone can connect to the socket: the job itself confirms a GOOD RESERVATION (its
        // state is polled until then), while a refusal can only stop the wait.
        if (
          e.line === "GOOD RESERVATION" &&
          (await jobStatus(jobId))?.reservation === "Scheduled"
        ) {
          break;
        }
        if (e.line === "BAD JOB") {
          printError(`Reservation not valid --> KO (job ${jobId})`);
          return 1;
        }
        if (e.line.trim() !== "") info(e.line.trim());
        continue;
      }
      const job = await jobStatus(jobId);
      if (!job || job.state === "Error" || job.state === "Terminated") {
        printError(`Reservation not valid --> KO (job ${jobId} ${job?.state ?? "gone"})`);
        return 1;
      }
      if (job.reservation === "Scheduled") break;
      if (e.kind === "closed") {
        printError("the notification socket closed");
        return 1;
      }
    }
  } finally {
    clearInterval(poll);
    listener.close();
    await reading;
  }
  info("Reservation valid --> OK");
  return 0;
}
