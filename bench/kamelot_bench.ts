/**
 * The scheduling step alone (Kamelot on a slot set, in memory), on bench:sched's queue: the
 * waiting jobs are read once, then scheduled `--runs` times on a fresh slot set, with a fixed
 * clock. Without the database writes that run beside the round's scheduling (bench:sched), the
 * times move less from run to run; the first run is the cold one, as in every meta_sched
 * process. The signature, a hash of every placement (job, moldable, start, resources), must
 * not move when a change is meant to make the search faster without changing its answers.
 *
 *   deno task bench:kamelot [jobs=10000] [cores=10000] [--runs 7]
 */
import { parseArgs } from "node:util";
import { moduleLogger } from "../lib/runtime/log.ts";
import { FilterCache } from "../modules/meta_sched/kamelot/filters.ts";
import {
  type Placement,
  type SchedJob,
  scheduleJobs,
} from "../modules/meta_sched/kamelot/kamelot.ts";
import { filtersOf, loadWaitingJobs, toSchedJob } from "../modules/meta_sched/kamelot/requests.ts";
import { loadResourceSet } from "../modules/meta_sched/kamelot/resource_set.ts";
import { SlotSet } from "../modules/meta_sched/kamelot/slots.ts";
import { createTestDb } from "../tests/support/testdb.ts";
import { CORES_PER_HOST, setUpQueue } from "./sched_workload.ts";

/** As round.ts: scheduled in chunks of this many jobs, one request cache across them. */
const CHUNK = 500;
const SECURITY = 60;
const NOW = 1_000_000;

/** FNV-1a over the placements' numbers. */
function signature(placed: readonly Placement[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x & 0xffff), 16777619);
    h = Math.imul(h ^ (x >>> 16), 16777619);
  };
  for (const p of placed) {
    mix(p.jobId);
    mix(p.moldableId);
    mix(p.start);
    for (const x of p.res) mix(x);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "7" } },
  allowPositionals: true,
});
const jobs = Number(positionals[0] ?? 10000);
const cores = Math.ceil(Number(positionals[1] ?? 10000) / CORES_PER_HOST) * CORES_PER_HOST;
const runs = Math.max(1, Number(values.runs));

await using db = await createTestDb();
const config = await setUpQueue(db, jobs, cores);
const rs = await loadResourceSet(db.sql, config, moduleLogger("meta_sched"));
const waiting = await loadWaitingJobs(db.sql, ["default"], jobs);
const filters = new FilterCache(rs);
await filters.load(db.sql, filtersOf(waiting));
const requests: SchedJob[] = [];
for (const j of waiting) {
  const sj = toSchedJob(j, rs, filters, SECURITY, NOW);
  if (typeof sj !== "string") requests.push(sj);
}

const times: number[] = [];
const signatures = new Set<string>();
let placed: Placement[] = [];
for (let r = 0; r < runs; r++) {
  const slots = new SlotSet(rs.schedulable, NOW);
  const cache = new Map<string, number>();
  placed = [];
  const t = performance.now();
  for (let c = 0; c < requests.length; c += CHUNK) {
    const result = scheduleJobs(slots, rs.hierarchy, requests.slice(c, c + CHUNK), {
      security: SECURITY,
      cache,
    });
    placed.push(...result.placed);
  }
  times.push(performance.now() - t);
  signatures.add(signature(placed));
}
const rest = times.slice(1).sort((a, b) => a - b);
const ms = (x: number | undefined) => x === undefined ? "-" : `${x.toFixed(0)} ms`;
console.log(
  `${jobs} jobs on ${cores} cores: scheduling step first (cold) ${ms(times[0])}, ` +
    `then min ${ms(rest[0])}, median ${ms(rest[Math.floor(rest.length / 2)])} ` +
    `over ${rest.length} more runs | ${placed.length} placed | signature ${
      [...signatures].join(",")
    }`,
);
if (signatures.size > 1) {
  console.error("the runs placed the jobs differently: the search is not deterministic");
  Deno.exit(1);
}
