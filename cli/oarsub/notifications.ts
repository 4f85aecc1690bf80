/**
 * What an interactive oarsub hears on its socket (`info_type` = host:port) while its job waits:
 * the meta-scheduler's start predictions and `BAD JOB` (docs/modules.md §11 steps 12-13), bipbip's
 * `Starting...`, `GOOD JOB` and `ERROR: ...` (§4.3), leon's `JOB_KILLED` (§6.2). Each sender
 * opens a connection, writes one or more newline-terminated lines and closes.
 *
 * The reference oarsub stops waiting on `GOOD JOB`, `BAD JOB`, `JOB KILL` or a line starting
 * with `ERROR`, and shows a start prediction only when its text after the `]` changed; leon
 * writes `JOB_KILLED`, which the reference's oarsub never matched (it waited on): both spellings
 * end the wait here.
 */
import { InteractiveMessages } from "../../lib/protocol/mod.ts";

export type Notification =
  | { kind: "good" }
  | { kind: "bad" }
  | { kind: "killed" }
  | { kind: "error"; text: string }
  /** `key`: the text after the timestamp, to show a prediction only when it changed. */
  | { kind: "prediction"; text: string; key: string }
  | { kind: "info"; text: string };

/** One line as sent (without its newline); trailing CR and blanks are not part of it. */
export function classifyNotification(raw: string): Notification {
  const text = raw.replace(/[\r\s]+$/, "");
  if (text === InteractiveMessages.goodJob) return { kind: "good" };
  if (text === InteractiveMessages.badJob) return { kind: "bad" };
  if (text === InteractiveMessages.jobKilled || text === "JOB KILL") return { kind: "killed" };
  if (text.startsWith("ERROR")) return { kind: "error", text };
  const m = /^\[[^\]]*\](.*)$/.exec(text);
  if (m) return { kind: "prediction", text, key: m[1] };
  return { kind: "info", text };
}

/** Whether the wait for the job's start is over (and, unless `good`, failed). */
export function endsWait(n: Notification): boolean {
  return n.kind === "good" || n.kind === "bad" || n.kind === "killed" || n.kind === "error";
}

/**
 * What the user is shown of a stream of notifications: repeated predictions (the scheduler
 * sends one every round) are shown once, `GOOD JOB` is not shown at all.
 */
export class NotificationFilter {
  #lastPrediction: string | null = null;

  /** The text to show for `n`, or null. */
  show(n: Notification): string | null {
    switch (n.kind) {
      case "good":
        return null;
      case "prediction":
        if (n.key === this.#lastPrediction) return null;
        this.#lastPrediction = n.key;
        return n.text;
      case "bad":
        return InteractiveMessages.badJob;
      case "killed":
        return "the job was killed before it started";
      default:
        return n.text;
    }
  }
}
