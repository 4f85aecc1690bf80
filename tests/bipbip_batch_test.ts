/**
 * bipbip's batch path (modules/bipbip/batch.ts) against its one-job path: the same jobs, launched
 * and ended once through `bipbip()` one by one and once as one `bipbip --stdin` batch, on two
 * databases, must leave the same trace: states and their log, exit codes, events with their
 * hosts, what oarexec was given, exit codes of the invocations, almighty's notifications.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { insertJob, insertResources, type JobFixture } from "./support/fixtures.ts";
import { challengeOf } from "./support/exec_fixtures.ts";
import { bipbip, type BipbipContext } from "../modules/bipbip/bipbip.ts";
import { bipbipLines } from "../modules/bipbip/batch.ts";
import { Config } from "../lib/runtime/config.ts";
import { setupLogging } from "../lib/runtime/log.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import type { Launcher, LaunchResult } from "../lib/launch/launcher.ts";
import { parseOarexecDescriptor } from "../lib/protocol/mod.ts";
import { runNodeChangeState } from "../modules/node_change_state/node_change_state.ts";
import type { OarexecSignaller } from "../lib/launch/oarexec_signal.ts";

/** oarexec stand-in: no rendezvous on `broken` (oarexec's exit 7), else a rendezvous. */
class FakeLauncher implements Launcher {
  readonly launches = new Map<string, unknown>();
  constructor(readonly kind: "ssh" | "local", readonly down: string[] = []) {}
  launch(host: string, descriptor: string): Promise<LaunchResult> {
    const d = parseOarexecDescriptor(descriptor);
    assertOk(d.ok);
    this.launches.set(String(d.value.job_id), { host, ...d.value });
    return Promise.resolve(
      host === "broken"
        ? { rendezvous: false, exitCode: 7, output: "no shell" }
        : { rendezvous: true, exitCode: null, output: "" },
    );
  }
  signalOarexec(): Promise<string | null> {
    return Promise.resolve(null);
  }
  unreachable(hosts: string[]): Promise<string[]> {
    return Promise.resolve(hosts.filter((h) => this.down.includes(h)));
  }
}

interface Case {
  /**
   * Jobs to create; `end` jobs are Running and get a report (`twice`: the same report again
   * after the others), the others are launched.
   */
  jobs: (JobFixture & { hosts: string[]; end?: string[] | "bad-challenge"; twice?: boolean })[];
  /** The batch's lines come one per turn of the event loop (a batch each), not all at once. */
  spaced?: boolean;
  conf?: Record<string, string | number>;
  kind?: "ssh" | "local";
  down?: string[];
}

interface Trace {
  codes: Record<string, number>;
  jobs: readonly unknown[];
  logs: readonly unknown[];
  events: readonly unknown[];
  launches: unknown;
  notified: string[];
}

async function* linesOf(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

async function* spacedLinesOf(lines: string[]): AsyncGenerator<string> {
  for (const line of lines) {
    yield line;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

async function play(
  db: TestDb,
  c: Case,
  batch: boolean,
  afterEach: () => Promise<unknown> = () => Promise.resolve(),
): Promise<Trace> {
  const config = new Config({
    ...Object.fromEntries(db.config.entries()),
    LOG_LEVEL: 1,
    ...c.conf,
  });
  const notifier = new RecordingNotifier();
  const launcher = new FakeLauncher(c.kind ?? "local", c.down);
  const ctx: BipbipContext = {
    sql: db.sql,
    config,
    log: setupLogging("bipbip-batch-test", config),
    notifier,
    launcher,
    unreachable: (h) => launcher.unreachable(h),
  };
  const invocations: string[][] = [];
  for (const f of c.jobs) {
    const resources = await insertResources(db.sql, f.hosts, 1);
    const state = f.state ?? (f.end ? "Running" : "toLaunch");
    const { jobId } = await insertJob(db.sql, { ...f, state, resources });
    if (f.end === "bad-challenge") invocations.push([String(jobId), "0", "0", "not_it"]);
    else if (f.end) invocations.push([String(jobId), ...f.end, await challengeOf(db.sql, jobId)]);
    else invocations.push([String(jobId)]);
  }
  invocations.push(...c.jobs.flatMap((f, k) => f.twice ? [invocations[k]] : []));
  const codes: Record<string, number> = {};
  if (batch) {
    const lines = invocations.map((a) => JSON.stringify(a));
    await bipbipLines(ctx, (c.spaced ? spacedLinesOf : linesOf)(lines), (id, code) => {
      codes[id] = code;
    });
  } else {
    for (const a of invocations) {
      codes[a[0]] = await bipbip(ctx, a);
      await afterEach();
    }
  }
  return {
    codes,
    jobs: await db.sql`
      SELECT job_id, state, exit_code, message, (stop_time > 0) AS stopped FROM jobs
      ORDER BY job_id`,
    logs: await db.sql`
      SELECT job_id, job_state, (date_stop = 0) AS open FROM job_state_logs
      ORDER BY job_id, job_state_log_id`,
    events: await db.sql`
      SELECT e.job_id, e.type, e.description, e.to_check,
        ARRAY(SELECT hostname FROM event_log_hostnames h WHERE h.event_id = e.event_id
              ORDER BY hostname) AS hosts
      FROM event_logs e ORDER BY e.job_id, e.event_id`,
    launches: Object.fromEntries(
      [...launcher.launches].map(([id, d]) => [id, { ...(d as object), challenge: "-" }]),
    ),
    notified: [...new Set(notifier.almightyCommands)].sort(),
  };
}

async function sameTrace(c: Case): Promise<Trace> {
  await using one = await createTestDb();
  await using many = await createTestDb();
  const byOne = await play(one, c, false);
  const byBatch = await play(many, c, true);
  assertEquals(byBatch, byOne);
  return byBatch;
}

Deno.test("batch launches: the same trace as one bipbip per job", async () => {
  const t = await sameTrace({
    jobs: [
      { hosts: ["n1", "n2"], command: "a", walltime: 77 },
      { hosts: ["n3"], types: ["besteffort", "k=v"] },
      { hosts: ["n4"], types: ["noop"] },
      { hosts: ["n5"], state: "Waiting" },
      { hosts: ["broken"] },
      { hosts: ["n6"], types: ["deploy"] },
      { hosts: ["n7"], name: "it's", command: "echo $(id)" },
    ],
    conf: { DEPLOY_HOSTNAME: "deployer" },
  });
  assertEquals(Object.values(t.codes), [0, 0, 0, 1, 0, 0, 0]);
  assertEquals(Object.keys(t.launches as object).length, 5);
});

Deno.test("batch launches, ssh launcher: a job on a host that does not answer, as one by one", async () => {
  await sameTrace({
    jobs: [{ hosts: ["n1", "n2"] }, { hosts: ["n3"] }, { hosts: ["n4", "n5"] }],
    kind: "ssh",
    down: ["n2"],
  });
});

Deno.test("batch ends: the same trace as one bipbip per report", async () => {
  const t = await sameTrace({
    jobs: [
      { hosts: ["n1"], end: ["0", "0"] },
      { hosts: ["n2", "n3"], end: ["0", "256"] },
      { hosts: ["n4"], end: ["0", "N"] },
      { hosts: ["n5"], end: ["2", "0"] },
      { hosts: ["n6", "n7"], end: ["10", "N"] },
      { hosts: ["n8"], end: ["3", "9"], types: ["besteffort"] },
      { hosts: ["n9"], end: "bad-challenge" },
      { hosts: ["n10"], end: ["0", "0"], state: "Terminated" },
      { hosts: ["n11"], end: ["33", "0"], state: "Suspended" },
      { hosts: ["n12"], end: ["x", "0"] },
    ],
  });
  assertEquals(Object.values(t.codes), [0, 0, 0, 0, 0, 0, 2, 1, 0, 2]);
});

Deno.test("batch ends, one report per read: gathered while one batch runs, the same trace", async () => {
  // Each line is a batch of its own; the reports that come while the first batch's end is
  // being written go together in the next (group commit), a repeated one included.
  const t = await sameTrace({
    spaced: true,
    jobs: [
      { hosts: ["n1"], end: ["0", "0"] },
      { hosts: ["n2", "n3"], end: ["0", "256"], twice: true },
      { hosts: ["n4"], end: ["2", "0"] },
      { hosts: ["n5"], end: ["0", "0"] },
      { hosts: ["n6"], end: "bad-challenge" },
      { hosts: ["n7"], end: ["0", "0"], twice: true },
    ],
  });
  assertEquals(t.jobs.map((j) => (j as { state: string }).state), [
    "Finishing",
    "Finishing",
    "Finishing",
    "Finishing",
    "Running",
    "Finishing",
  ]);
});

Deno.test("batch ends with a server epilogue: job by job, the same trace", async () => {
  await sameTrace({
    jobs: [{ hosts: ["n1"], end: ["0", "0"] }, { hosts: ["n2"], end: ["0", "0"] }],
    conf: { SERVER_EPILOGUE_EXEC_FILE: "/bin/true" },
  });
});

Deno.test("batch: NodeChangeState then ends every job of the batch as it would one by one", async () => {
  const c: Case = {
    jobs: [
      { hosts: ["n1"], end: ["0", "0"] },
      { hosts: ["n2"], end: ["0", String(99 << 8)] },
      { hosts: ["n3"], end: ["2", "0"] },
      { hosts: ["n4"], end: ["0", "0"] },
      { hosts: ["n5"], end: ["0", "0"] },
    ],
  };
  const nodeChangeState = async (db: TestDb) => {
    const config = new Config({ ...Object.fromEntries(db.config.entries()), LOG_LEVEL: 1 });
    await runNodeChangeState({
      sql: db.sql,
      config,
      log: setupLogging("ncs-batch-test", config),
      notifier: new RecordingNotifier(),
      signaller: { signal: () => Promise.resolve(null) } as unknown as OarexecSignaller,
    });
  };
  const states = async (db: TestDb) =>
    await db.sql`
      SELECT j.job_id, j.state, j.assigned_moldable_job <> 0 AS assigned,
        (SELECT array_agg(DISTINCT assigned_resource_index::text) FROM assigned_resources a
         WHERE a.moldable_job_id = j.assigned_moldable_job) AS indexes,
        (SELECT count(*) FROM event_logs e WHERE e.job_id = j.job_id AND e.to_check = 'YES')
          AS unchecked,
        ARRAY(SELECT job_state::text FROM job_state_logs l WHERE l.job_id = j.job_id
              ORDER BY job_state_log_id) AS logs,
        (SELECT array_agg(DISTINCT r.last_job_date > 0) FROM resources r
         JOIN assigned_resources a ON a.resource_id = r.resource_id
         WHERE a.moldable_job_id = j.assigned_moldable_job) AS dated
      FROM jobs j ORDER BY job_id`;
  await using one = await createTestDb();
  await using many = await createTestDb();
  // One by one: NodeChangeState after each report, so each run sees one job's events.
  await play(one, c, false, () => nodeChangeState(one));
  await play(many, c, true);
  await nodeChangeState(many);
  const byOne = await states(one);
  const byBatch = await states(many);
  assertEquals(byBatch, byOne);
  assertEquals(byBatch.map((r) => r.state), [
    "Terminated",
    "Terminated",
    "Terminated",
    "Terminated",
    "Terminated",
  ]);
  assertEquals(byBatch.map((r) => r.indexes), [["LOG"], ["LOG"], ["LOG"], ["LOG"], ["LOG"]]);
});
