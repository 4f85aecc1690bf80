/**
 * JOB_PRIORITY=MULTIFACTOR in a round: the priority file read once per round, then, per queue
 * group, what the factors need for every waiting job (submission times, and only when their
 * weight is set: requests, qos/nice types, karma), the sort (priority.ts), and only then the
 * per-round limit, so that the jobs kept are those of highest priority.
 */
import type { Config } from "../../../lib/runtime/config.ts";
import type { Queryable } from "../../../lib/db/client.ts";
import { type FairshareSettings, fairshareSettings, karmaOf, loadConsumption } from "./karma.ts";
import {
  defaultPrioritySettings,
  jobSize,
  type MoldableShape,
  parsePrioritySettings,
  type PlatformSize,
  type PrioritySettings,
  sortByPriority,
  typeNumber,
} from "./priority.ts";
import { loadWaitingJobs, type SchedJobRow } from "./requests.ts";
import type { ResourceSet } from "./resource_set.ts";

/** Everything a round needs to order its queue groups by priority. */
export interface MultifactorOrdering {
  settings: PrioritySettings;
  /** Karma settings, when karma_weight is set. */
  fairshare: FairshareSettings | null;
  /** The platform, when size or work weights are set (awaited only then). */
  platform: () => Promise<PlatformSize>;
  warn: (msg: string) => void;
}

/**
 * Reads PRIORITY_CONF_FILE and the settings its weights call for. Never throws: a missing or
 * malformed file is reported through `warn`, and what cannot be read keeps OAR 3's default (a
 * weight of 0; with no weight at all, jobs are ordered FIFO).
 */
export function multifactorOrdering(
  config: Config,
  resources: Promise<ResourceSet>,
  warn: (msg: string) => void,
): MultifactorOrdering {
  const path = config.str("PRIORITY_CONF_FILE").trim();
  let settings = defaultPrioritySettings();
  if (path === "") {
    warn("JOB_PRIORITY=MULTIFACTOR without PRIORITY_CONF_FILE: every weight is 0 (FIFO order)");
  } else {
    let text: string | null = null;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      warn(
        `PRIORITY_CONF_FILE ${path} cannot be read (${(e as Error).message}): ` +
          `every weight is 0 (FIFO order)`,
      );
    }
    if (text !== null) {
      const parsed = parsePrioritySettings(text);
      settings = parsed.settings;
      for (const p of parsed.problems) warn(`PRIORITY_CONF_FILE ${path}: ${p}`);
    }
  }
  const w = settings.weights;
  return {
    settings,
    fairshare: w.karma > 0 ? fairshareSettings(config, warn) : null,
    platform: () => resources.then(platformSize),
    warn,
  };
}

/** The platform as the size factor sees it: all resources, and blocks per hierarchy label. */
export function platformSize(rs: ResourceSet): PlatformSize {
  const units = new Map<string, number>();
  for (const [label, level] of rs.hierarchy) units.set(label, level.blocks.length);
  return { resources: rs.rids.length, units };
}

/** What the factors read from the database for the waiting jobs of some queues. */
interface RawFacts {
  submissionTime: number;
  moldables: MoldableShape[];
  types: string[];
}

/**
 * Submission times of the waiting jobs of the queues, with their requests (`requests`) and
 * their qos/nice types (`types`) when asked for: a few set-based reads, whatever the number.
 */
export async function loadPriorityFacts(
  sql: Queryable,
  queues: readonly string[],
  want: { requests: boolean; types: boolean },
): Promise<Map<number, RawFacts>> {
  const out = new Map<number, RawFacts>();
  const jobs = await sql<{ job_id: number; submission_time: number }[]>`
    SELECT job_id, submission_time FROM jobs
    WHERE state = 'Waiting' AND reservation = 'None' AND queue_name IN ${sql(queues)}`;
  for (const j of jobs) {
    out.set(Number(j.job_id), {
      submissionTime: Number(j.submission_time),
      moldables: [],
      types: [],
    });
  }
  if (out.size === 0) return out;
  if (want.requests) {
    const rows = await sql<
      {
        job_id: number;
        moldable_id: number;
        walltime: number;
        group_id: number;
        label: string;
        value: number;
      }[]
    >`
      SELECT m.moldable_job_id AS job_id, m.moldable_id, m.moldable_walltime AS walltime,
        g.res_group_id AS group_id, d.res_job_resource_type AS label, d.res_job_value AS value
      FROM jobs j
      JOIN moldable_job_descriptions m
        ON m.moldable_job_id = j.job_id AND m.moldable_index = 'CURRENT'
      JOIN job_resource_groups g
        ON g.res_group_moldable_id = m.moldable_id AND g.res_group_index = 'CURRENT'
      JOIN job_resource_descriptions d
        ON d.res_job_group_id = g.res_group_id AND d.res_job_index = 'CURRENT'
      WHERE j.state = 'Waiting' AND j.reservation = 'None' AND j.queue_name IN ${sql(queues)}
      ORDER BY m.moldable_job_id, m.moldable_id, g.res_group_id, d.res_job_order`;
    let moldableId = -1, groupId = -1;
    for (const r of rows) {
      const f = out.get(Number(r.job_id));
      if (f === undefined) continue; // arrived between the two reads: left at its defaults
      if (Number(r.moldable_id) !== moldableId) {
        moldableId = Number(r.moldable_id);
        groupId = -1;
        f.moldables.push({ walltime: Number(r.walltime), groups: [] });
      }
      const m = f.moldables.at(-1)!;
      if (Number(r.group_id) !== groupId) {
        groupId = Number(r.group_id);
        m.groups.push([]);
      }
      m.groups.at(-1)!.push({ label: r.label, count: Number(r.value) });
    }
  }
  if (want.types) {
    const rows = await sql<{ job_id: number; type: string }[]>`
      SELECT t.job_id, t.type FROM job_types t JOIN jobs j ON j.job_id = t.job_id
      WHERE t.types_index = 'CURRENT' AND (t.type LIKE 'qos=%' OR t.type LIKE 'nice=%')
        AND j.state = 'Waiting' AND j.reservation = 'None' AND j.queue_name IN ${sql(queues)}
      ORDER BY t.job_type_id`;
    for (const r of rows) out.get(Number(r.job_id))?.types.push(r.type);
  }
  return out;
}

/**
 * A queue group's waiting jobs, highest priority first, at most `limit` of them; and under a
 * karma weight, every waiting job's karma (written to the messages and `last_karma`, as under
 * fairsharing).
 */
export async function loadWaitingByPriority(
  sql: Queryable,
  queues: readonly string[],
  now: number,
  limit: number,
  o: MultifactorOrdering,
): Promise<{ waiting: SchedJobRow[]; karma: Map<number, number> | null }> {
  const w = o.settings.weights;
  const needsShape = w.size > 0 || w.work > 0;
  const facts = await loadPriorityFacts(sql, queues, {
    requests: needsShape,
    types: w.qos > 0 || w.nice > 0,
  });
  const platform: PlatformSize = needsShape
    ? await o.platform()
    : { resources: 0, units: new Map() };
  const used = o.fairshare === null
    ? null
    : await loadConsumption(sql, queues, now, o.fairshare.windowSize);
  let karma: Map<number, number> | null = null;
  const waiting = await loadWaitingJobs(sql, queues, limit, (jobs) => {
    if (used !== null && o.fairshare !== null) {
      karma = new Map();
      for (const j of jobs) karma.set(j.jobId, karmaOf(j, used, o.fairshare));
    }
    return sortByPriority(
      jobs,
      (j) => {
        const f = facts.get(j.jobId);
        const shape = f && needsShape ? jobSize(f.moldables, platform) : null;
        return {
          queue: j.queue,
          // A job the first read missed counts as just submitted.
          submissionTime: f?.submissionTime ?? now,
          size: shape?.size ?? null,
          work: shape?.work ?? null,
          karma: karma?.get(j.jobId) ?? 0,
          qos: f ? typeNumber(f.types, "qos") : null,
          nice: f ? typeNumber(f.types, "nice") : null,
        };
      },
      o.settings,
      { now, platformResources: platform.resources },
      o.warn,
    ).ordered;
  });
  return { waiting, karma };
}
