/**
 * What the steps of a meta-scheduler round (../round.ts) share: the round's state, from its
 * settings to its outcome, and the plan, the Gantt the round builds in its transaction.
 */
import type { Config } from "../../../lib/runtime/config.ts";
import type { Queryable, Sql } from "../../../lib/db/client.ts";
import type { JobState } from "../../../lib/job/states.ts";
import type { Logger } from "../../../lib/runtime/log.ts";
import type { Notifier } from "../../../lib/transport/notifier.ts";
import type { OarexecSignaller } from "../../../lib/launch/oarexec_signal.ts";
import type { FilterCache } from "../kamelot/filters.ts";
import type { FairshareSettings } from "../kamelot/karma.ts";
import type { GanttDelta, GanttJob, GanttMap, PairsCopy } from "../kamelot/gantt.ts";
import type { SchedJob } from "../kamelot/kamelot.ts";
import type { OarsubNotify } from "../../../lib/job/oarsub_notify.ts";
import type { RoundQuotas } from "../kamelot/quotas_load.ts";
import type { MultifactorOrdering } from "../kamelot/priority_jobs.ts";
import type { SchedJobRow } from "../kamelot/requests.ts";
import type { ResourceSet } from "../kamelot/resource_set.ts";
import type { SlotSet } from "../kamelot/slots.ts";
import type { GroupJobs, QueueRow } from "./group_jobs.ts";

/** What a round is given: its connections, configuration and companions. */
export interface RoundContext {
  /** A pool of at least ROUND_POOL_SIZE (../round.ts) connections. */
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  /** DB time by default; tests pass their own. */
  now?: number;
  /** TCP to oarsub by default. */
  oarsub?: OarsubNotify;
  /**
   * Asks a besteffort job with `checkpoint > 0` to checkpoint before it is killed (docs/modules.md
   * §11 step 7); without one, such a job is killed at once, with a warning.
   */
  signaller?: OarexecSignaller;
}

/** A decision of this round: a moldable's start and resources. */
export interface GanttRow {
  moldableId: number;
  start: number;
  rids: number[];
}

export interface StateChange {
  jobId: number;
  state: JobState;
  message?: string;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** The round from its start to its report. */
export interface RoundState {
  sql: Sql;
  config: Config;
  log: Logger;
  notifier: Notifier;
  oarsub: OarsubNotify;
  signaller?: OarexecSignaller;

  now: number;
  security: number;
  /** SCHEDULER_BESTEFFORT_KILL_DURATION_BEFORE_RESERVATION */
  killDelay: number;
  /** MAX_JOB_PER_QUEUES_GROUP_SCHEDULING_ROUND */
  maxJobs: number;
  /** RESERVATION_WAITING_RESOURCES_TIMEOUT */
  arTimeout: number;
  /** METASCHEDULER_MODE=external */
  external: boolean;
  fairshare: FairshareSettings | null;
  multifactor: MultifactorOrdering | null;

  timings: Record<string, number>;
  /** Adds the time since the previous lap to `timings[name]`. */
  lap: (name: string) => void;

  /** Read on other connections while the round's transaction reads the Gantt. */
  resourceSetLoad: Promise<ResourceSet>;
  queuesLoad: Promise<QueueRow[]>;
  /** The first group's waiting jobs, read ahead; null once used. */
  prefetch: Promise<{ key: string; jobs: GroupJobs } | null>;

  karmas: Map<number, number>;
  /** Job id → why it was not scheduled. */
  skipped: Map<number, string>;
  /** Waiting jobs' messages to write. */
  messages: Map<number, string>;
  /** Waiting jobs' messages as read this round: one the round leaves as it is is not written. */
  shown: Map<number, string>;
  stateChanges: StateChange[];
  /** Queues to set notActive. */
  notActive: string[];
  exitCode: number;
  fragged: number[];
  launched: number[];

  /**
   * Step 9 (the `_visu` copy) runs in its own transaction beside the round: its resources
   * beside the Gantt's, its predictions once the launches are done (a late reservation's start
   * moves then). `gate` opens when they are; `done` is that transaction.
   */
  visu: {
    gate: Deferred<void>;
    copy: Deferred<PairsCopy | null>;
    deltaReady: Deferred<GanttDelta>;
    done: Promise<void> | null;
  };
}

/** The Gantt the round builds in its transaction, and what scheduling into it needs. */
export interface RoundPlan {
  /** The Gantt as the tables held it. */
  old: GanttMap;
  /** Whether the `_visu` copy held what the Gantt held. */
  visuInSync: boolean;
  rs: ResourceSet;
  filters: FilterCache;
  slots: SlotSet;
  /** The jobs the Gantt keeps (step 2). */
  gantt: GanttJob[];
  quota: RoundQuotas;
  /** The Gantt this round writes: its base (step 2), then this round's decisions. */
  next: GanttMap;
  plannedEnd: Map<number, number>;
  besteffortRunning: GanttJob[];
  besteffortPlaced: boolean;
  containers: Map<string, SlotSet>;
  ganttRows: GanttRow[];
  /** Moldables whose resource rows were streamed into the Gantt while scheduling. */
  streamed: Set<number>;
  /** Messages already written (while scheduling), and the writes under way. */
  messagesWritten: Map<number, string>;
  messageWrites: Promise<void>[];
  /**
   * Inner jobs of a container not yet placed when their group came (its queue comes later):
   * tried again once every group is done, so they need not wait a round.
   */
  innerLater: { job: SchedJob; row: SchedJobRow; karma?: number }[];
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // whoever awaits it sees the failure
  return { promise, resolve, reject };
}

/**
 * PostgreSQL's JIT (jit_above_cost) compiles the round's statements over large tables for
 * 100-300 ms each, to save a few milliseconds of execution: off in the round's transactions.
 */
export async function noJit(tx: Queryable): Promise<void> {
  await tx`SET LOCAL jit = off`;
}
