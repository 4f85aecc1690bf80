/**
 * The one table of OAR job states (docs/modules.md §13.1, the `job_state` enum of the schema) and
 * the named sets the server filters on. A rule over several states is written once here, by name,
 * and SQL takes it as a parameter (`state IN ${sql(FINAL_STATES)}`) rather than repeating literals,
 * so TypeScript and the database cannot disagree on what "final" or "running" means.
 */

export const JOB_STATES = [
  "Waiting",
  "Hold",
  "toLaunch",
  "toError",
  "toAckReservation",
  "Launching",
  "Running",
  "Suspended",
  "Resuming",
  "Finishing",
  "Terminated",
  "Error",
] as const;
export type JobState = typeof JOB_STATES[number];

/** States a job never leaves (docs/modules.md §13.1). */
export const FINAL_STATES: readonly JobState[] = ["Terminated", "Error"];

/** Every other state: a job in one of these is not over. */
export const UNFINISHED_STATES: readonly JobState[] = JOB_STATES.filter((s) =>
  !FINAL_STATES.includes(s)
);

/**
 * A job whose end is decided: Finishing or final. Nothing is left to kill (leon, sarko) and it
 * may be resubmitted.
 */
export const ENDING_STATES: readonly JobState[] = ["Finishing", ...FINAL_STATES];

/** Every other state: the job holds its resources, or will (greta keeps its nodes awake). */
export const LIVE_STATES: readonly JobState[] = JOB_STATES.filter((s) =>
  !ENDING_STATES.includes(s)
);

/** States of a job whose oarexec may be running: its end report is expected (docs/modules.md §5.1). */
export const RUNNING_LIKE_STATES: readonly JobState[] = [
  "Launching",
  "Running",
  "Suspended",
  "Resuming",
];

/**
 * States of jobs that hold their resources now: the scheduler re-inserts them in the Gantt at
 * their start time, and counts them in the quotas.
 */
export const RESOURCE_HOLDING_STATES: readonly JobState[] = [
  "Running",
  "toLaunch",
  "Launching",
  "Finishing",
  "Suspended",
  "Resuming",
];

/** A suspended job, or one being resumed: its time there is not walltime used. */
export const SUSPENDED_STATES: readonly JobState[] = ["Suspended", "Resuming"];

/** Whether `state` (a row's text) is in `states`. */
export function stateIn(states: readonly JobState[], state: string): boolean {
  return (states as readonly string[]).includes(state);
}

export function isFinalState(state: string): boolean {
  return stateIn(FINAL_STATES, state);
}
