/**
 * almighty and the one-shot modules it keeps ready (modules/almighty/standby.ts,
 * lib/runtime/oneshot.ts): almighty writes `go` on the module's stdin for each run; the module
 * answers at once with a `running` line (it took the go), and at the end with the run's exit
 * code in a `done` line, both on its stdout, then waits for the next `go` or for the end of its
 * input.
 */

/** Starts one run of a standby module. */
export const STANDBY_GO = "go";

export function encodeStandbyGo(): string {
  return `${STANDBY_GO}\n`;
}

/**
 * A standby module's lines to almighty. Each starts on a line of its own: whatever the module
 * printed before without a newline cannot hide it.
 */
export function encodeStandbyRunning(): string {
  return "\nOAR_STANDBY_RUNNING\n";
}

/**
 * The exit code of the run (what a process exit would have given: 0-255, and 1 for what is not
 * an integer), and `last` when the process leaves after it instead of waiting for another `go`.
 */
export function encodeStandbyDone(code: number, last = false): string {
  const exit = Number.isInteger(code) ? code & 255 : 1;
  return `\nOAR_STANDBY_DONE ${exit}${last ? " last" : ""}\n`;
}

export type StandbyLine =
  | { kind: "running" }
  | { kind: "done"; code: number; more: boolean };

/** A standby's `running` or `done` line, else null (other output of the module). */
export function parseStandbyLine(line: string): StandbyLine | null {
  if (line === "OAR_STANDBY_RUNNING") return { kind: "running" };
  const m = /^OAR_STANDBY_DONE (\d{1,3})( last)?$/.exec(line);
  if (!m || Number(m[1]) > 255) return null;
  return { kind: "done", code: Number(m[1]), more: m[2] === undefined };
}
