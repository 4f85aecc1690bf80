import {
  buildLevel,
  type GroupRequest,
  type Hierarchy,
} from "../modules/meta_sched/kamelot/hierarchy.ts";
import { count, overlaps, range } from "../modules/meta_sched/kamelot/intervals.ts";
import {
  type Placement,
  type SchedJob,
  scheduleJobs,
} from "../modules/meta_sched/kamelot/kamelot.ts";
import { SlotSet } from "../modules/meta_sched/kamelot/slots.ts";
import { assertEquals, assertOk } from "./support/assert.ts";

function hierarchy(hosts: number, cores: number): Hierarchy {
  const n = hosts * cores;
  const ids = [...Array(n).keys()];
  return new Map([
    ["resource_id", buildLevel("resource_id", ids)],
    ["network_address", buildLevel("network_address", ids.map((i) => `h${Math.floor(i / cores)}`))],
    ["core", buildLevel("core", ids)],
  ]);
}

const req = (levels: [string, number][], constraint: readonly number[]): GroupRequest => ({
  levels: levels.map(([label, count]) => ({ label, count })),
  constraint,
});

function job(
  jobId: number,
  walltime: number,
  n: number,
  total: number,
  extra: Partial<SchedJob> = {},
): SchedJob {
  return {
    jobId,
    minStart: 0,
    moldables: [{
      moldableId: jobId * 10,
      walltime,
      groups: [req([["resource_id", n]], range(0, total - 1))],
      cacheKey: `${walltime}/${n}`,
    }],
    ...extra,
  };
}

Deno.test("kamelot: conservative backfilling fills a hole without delaying earlier jobs", () => {
  const hy = hierarchy(1, 4);
  const slots = new SlotSet(range(0, 3), 0);
  const r = scheduleJobs(slots, hy, [
    job(1, 100, 2, 4), // [0, 99] on 2
    job(2, 50, 4, 4), // needs all 4: [100, 149]
    job(3, 101, 2, 4), // the 100 s hole next to job 1 is one second short: after job 2
    job(4, 101, 2, 4), // same request (cache hit): beside job 3
    job(5, 100, 1, 4), // exactly fills the hole beside job 1
    job(6, 100, 1, 4), // and its other resource
    job(7, 100, 1, 4), // no hole left: after jobs 3 and 4
  ]);
  const at = new Map(r.placed.map((p) => [p.jobId, p.start]));
  assertEquals(at.get(1), 0);
  assertEquals(at.get(2), 100);
  assertEquals(at.get(3), 150);
  assertEquals(at.get(4), 150);
  assertEquals(at.get(5), 0);
  assertEquals(at.get(6), 0);
  assertEquals(at.get(7), 251);
  assertEquals(r.skipped.size, 0);
});

Deno.test("kamelot: moldable finishing earliest wins; impossible job skipped, others go on", () => {
  const hy = hierarchy(1, 4);
  const slots = new SlotSet(range(0, 3), 0);
  slots.occupy(0, 999, range(0, 2));
  const r = scheduleJobs(slots, hy, [
    job(1, 10, 5, 4), // never fits
    {
      jobId: 2,
      minStart: 0,
      moldables: [
        { moldableId: 21, walltime: 100, groups: [req([["resource_id", 4]], range(0, 3))] },
        { moldableId: 22, walltime: 800, groups: [req([["resource_id", 1]], range(0, 3))] },
      ],
    },
  ]);
  assertEquals(r.skipped.has(1), true);
  assertEquals(r.placed.map((p) => [p.jobId, p.moldableId, p.start]), [[2, 22, 0]]);
});

Deno.test("kamelot: dependencies start after the required job's planned end", () => {
  const hy = hierarchy(1, 4);
  const slots = new SlotSet(range(0, 3), 0);
  const r = scheduleJobs(slots, hy, [
    job(1, 100, 1, 4),
    job(2, 10, 1, 4, { after: [1] }),
    job(3, 10, 1, 4, { after: [99] }),
  ]);
  const at = new Map(r.placed.map((p) => [p.jobId, p.start]));
  assertEquals(at.get(2), 100);
  assertOk(r.skipped.has(3));
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** docs/differences.md #61: no resource is ever given to two jobs overlapping in time. */
export function assertNoOverlap(placed: readonly Placement[], what = ""): void {
  for (let i = 0; i < placed.length; i++) {
    for (let j = i + 1; j < placed.length; j++) {
      const a = placed[i], b = placed[j];
      const timeOverlap = a.start < b.start + b.walltime && b.start < a.start + a.walltime;
      if (timeOverlap && overlaps(a.res, b.res)) {
        throw new Error(`${what}: jobs ${a.jobId} and ${b.jobId} overlap`);
      }
    }
  }
}

Deno.test("kamelot: property (#61) — random workloads never oversubscribe", () => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const hosts = 1 + Math.floor(r() * 6), cores = 1 + Math.floor(r() * 8);
    const total = hosts * cores;
    const hy = hierarchy(hosts, cores);
    const slots = new SlotSet(range(0, total - 1), 1000);
    const existing: Placement[] = [];
    // Some running jobs first.
    for (let k = 0; k < 5; k++) {
      const n = 1 + Math.floor(r() * total);
      const s = 1000 + Math.floor(r() * 50);
      const w = 1 + Math.floor(r() * 300);
      const free = slots.freeOver(s, w);
      if (count(free) < n) continue;
      const res = range(free[0], free[0] + 0) as number[];
      slots.occupy(s, s + w - 1, res);
      existing.push({ jobId: 1000 + k, moldableId: 0, start: s, walltime: w, res });
    }
    const jobs: SchedJob[] = [];
    for (let k = 1; k <= 40; k++) {
      const w = 1 + Math.floor(r() * 500);
      const kind = r();
      const groups: GroupRequest[] = kind < 0.5
        ? [req([["resource_id", 1 + Math.floor(r() * total)]], range(0, total - 1))]
        : kind < 0.8
        ? [
          req([["network_address", 1 + Math.floor(r() * hosts)], [
            "core",
            1 + Math.floor(r() * cores),
          ]], range(0, total - 1)),
        ]
        : [
          req([["network_address", 1]], range(0, total - 1)),
          req([["resource_id", 1]], range(0, total - 1)),
        ];
      jobs.push({
        jobId: k,
        minStart: 1000 + Math.floor(r() * 100),
        moldables: [{ moldableId: k, walltime: w, groups, cacheKey: JSON.stringify([w, groups]) }],
        after: r() < 0.1 && k > 1 ? [k - 1] : undefined,
      });
    }
    const res = scheduleJobs(slots, hy, jobs);
    assertNoOverlap([...existing, ...res.placed], `seed ${seed}`);
    for (const p of res.placed) {
      const j = jobs[p.jobId - 1];
      assertOk(p.start >= j.minStart, `seed ${seed}: job ${p.jobId} before its min start`);
    }
  }
});

// --- timesharing ----------------------------------------------------------------------------

Deno.test("kamelot: timesharing jobs of the same key share, other keys and plain jobs do not", () => {
  const hy = hierarchy(1, 4);
  const slots = new SlotSet(range(0, 3), 0);
  const r = scheduleJobs(slots, hy, [
    job(1, 100, 4, 4, { timesharing: "A" }), // [0, 99] on all 4
    job(2, 100, 4, 4, { timesharing: "A" }), // same key: shares them at once
    job(3, 50, 2, 4, { timesharing: "A" }), // same key again, fewer resources
    job(4, 100, 1, 4, { timesharing: "B" }), // another key: after them
    job(5, 100, 1, 4), // not timesharing: after them, beside job 4
    job(6, 10, 1, 4, { timesharing: "B" }), // shares job 4's resource
  ]);
  const at = new Map(r.placed.map((p) => [p.jobId, p]));
  assertEquals([1, 2, 3, 4, 5, 6].map((id) => at.get(id)?.start), [0, 0, 0, 100, 100, 100]);
  assertEquals(at.get(6)!.res, at.get(4)!.res);
  assertOk(!overlaps(at.get(5)!.res, at.get(4)!.res), "a plain job never shares");
  assertEquals(r.skipped.size, 0);
});

Deno.test("kamelot: property (#61) — with timesharing, only jobs of one key ever share", () => {
  const keys = [null, null, "A", "B"];
  for (let seed = 1; seed <= 40; seed++) {
    const r = rng(1000 + seed);
    const hosts = 1 + Math.floor(r() * 4), cores = 1 + Math.floor(r() * 6);
    const total = hosts * cores;
    const slots = new SlotSet(range(0, total - 1), 0);
    const jobs: SchedJob[] = [];
    for (let k = 1; k <= 40; k++) {
      const n = 1 + Math.floor(r() * total);
      jobs.push(job(k, 1 + Math.floor(r() * 300), n, total, {
        minStart: Math.floor(r() * 100),
        timesharing: keys[Math.floor(r() * keys.length)],
      }));
    }
    const res = scheduleJobs(slots, hierarchy(hosts, cores), jobs);
    const placed = res.placed;
    for (let i = 0; i < placed.length; i++) {
      for (let j = i + 1; j < placed.length; j++) {
        const a = placed[i], b = placed[j];
        const timeOverlap = a.start < b.start + b.walltime && b.start < a.start + a.walltime;
        if (!timeOverlap || !overlaps(a.res, b.res)) continue;
        const ok = a.timesharing != null && a.timesharing === b.timesharing;
        assertOk(ok, `seed ${seed}: jobs ${a.jobId} and ${b.jobId} overlap`);
      }
    }
    assertEquals(res.skipped.size, 0, `seed ${seed}: every job fits eventually`);
  }
});

Deno.test(
  "kamelot: property — inner jobs stay inside their container's resources and window, and never overlap one another",
  () => {
    const security = 5;
    let innerPlaced = 0, innerSkipped = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(1000 + seed);
      const total = 4 + Math.floor(r() * 12);
      const hy = hierarchy(1, total);
      const slots = new SlotSet(range(0, total - 1), 0);
      const containers = new Map<string, SlotSet>();
      const jobs: SchedJob[] = [];
      const containerIds: number[] = [];
      for (let k = 1; k <= 30; k++) {
        const w = 10 + Math.floor(r() * 300);
        const n = 1 + Math.floor(r() * total);
        const kind = r();
        if (kind < 0.2 || containerIds.length === 0) {
          jobs.push(job(k, w + security, n, total, { container: "" }));
          containerIds.push(k);
        } else if (kind < 0.8) {
          const c = containerIds[Math.floor(r() * containerIds.length)];
          jobs.push(job(k, w + security, n, total, { inner: String(c) }));
        } else jobs.push(job(k, w + security, n, total));
      }
      const res = scheduleJobs(slots, hy, jobs, { containers, security });
      const byId = new Map(res.placed.map((p) => [p.jobId, p]));
      const what = `seed ${seed}`;
      for (const j of jobs) {
        const p = byId.get(j.jobId);
        if (j.inner && p) {
          innerPlaced++;
          const c = byId.get(Number(j.inner));
          assertOk(c !== undefined, `${what}: job ${j.jobId} placed without its container`);
          // Inside the container's resources and its window (walltime without security).
          assertEquals(count(p.res), count(p.res.length ? intersectRes(p.res, c!.res) : []));
          assertOk(p.start >= c!.start, `${what}: job ${j.jobId} starts before its container`);
          assertOk(
            p.start + p.walltime <= c!.start + c!.walltime - security,
            `${what}: job ${j.jobId} ends after its container`,
          );
        }
        if (j.inner && !p) {
          innerSkipped++;
          const why = res.skipped.get(j.jobId) ?? "";
          assertOk(/container/.test(why), `${what}: job ${j.jobId}: ${why}`);
        }
      }
      // Containers and plain jobs never overlap; inner jobs of one container neither.
      assertNoOverlap(res.placed.filter((p) => !jobs[p.jobId - 1].inner), what);
      for (const c of containerIds) {
        assertNoOverlap(
          res.placed.filter((p) => jobs[p.jobId - 1].inner === String(c)),
          `${what}, container ${c}`,
        );
      }
    }
    // Both cases were exercised.
    assertOk(innerPlaced > 100 && innerSkipped > 10, `${innerPlaced} placed, ${innerSkipped}`);
  },
);

Deno.test("kamelot: placeholders hold resources for allowed jobs only", () => {
  const hy = hierarchy(1, 4);
  const slots = new SlotSet(range(0, 3), 0);
  const r = scheduleJobs(slots, hy, [
    job(1, 100, 3, 4, { placeholder: "p" }), // holds 0-2 over [0, 99]
    job(2, 10, 2, 4), // only resource 3 is free: after the placeholder
    job(3, 10, 2, 4, { allow: "p" }), // inside the placeholder
    job(4, 10, 2, 4, { allow: "p" }), // one held and one free resource left: beside job 3
    job(5, 10, 2, 4, { allow: "p" }), // nothing left: after jobs 3 and 4
    job(6, 10, 1, 4, { allow: "q" }), // another placeholder's name: free resources only
  ]);
  const at = new Map(r.placed.map((p) => [p.jobId, p]));
  assertEquals(at.get(2)!.start, 100);
  assertEquals(at.get(3)!.start, 0);
  assertOk(!overlaps(at.get(3)!.res, range(3, 3)));
  assertEquals(at.get(4)!.start, 0);
  assertEquals(at.get(5)!.start, 10);
  // Resource 3, the only one not held, is job 4's until 10.
  assertEquals(at.get(6)!.start, 10);
  assertEquals(at.get(6)!.res, [3, 3]);
});

function intersectRes(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i += 2) {
    for (let x = a[i]; x <= a[i + 1]; x++) {
      for (let k = 0; k < b.length; k += 2) if (x >= b[k] && x <= b[k + 1]) out.push(x, x);
    }
  }
  return out;
}
