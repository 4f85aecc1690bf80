/**
 * The meta-scheduler's energy-saving decisions on a real database: who is halted, who is woken,
 * and what greta receives.
 */
import { assertEquals } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { bindLoopback } from "./support/ports.ts";
import { createTestDb, type TestDb } from "./support/testdb.ts";
import { Config } from "../lib/runtime/config.ts";
import { dbNow } from "../lib/db/client.ts";
import { energyDecisions, gretaMessages, sendToGreta } from "../modules/meta_sched/energy.ts";
import { addEvent } from "../lib/job/events.ts";
import { PullSocket, terminate } from "../lib/transport/zmq.ts";

const CONF = {
  ENERGY_SAVING_MODE: "metascheduler_decision_making",
  SCHEDULER_NODE_MANAGER_IDLE_TIME: 600,
  SCHEDULER_NODE_MANAGER_SLEEP_TIME: 600,
  SCHEDULER_NODE_MANAGER_WAKEUP_TIME: 60,
};

/** A job planned in the gantt on these resources at `start`. */
async function plan(db: TestDb, resources: number[], start: number, walltime = 100) {
  const { moldableId } = await insertJob(db.sql, { state: "Waiting", walltime });
  await db.sql`INSERT INTO gantt_jobs_predictions (moldable_job_id, start_time)
    VALUES (${moldableId}, ${start})`;
  for (const r of resources) {
    await db.sql`INSERT INTO gantt_jobs_resources (moldable_job_id, resource_id)
      VALUES (${moldableId}, ${r})`;
  }
}

Deno.test("energy: idle hosts are halted, hosts with planned jobs are woken or kept", async () => {
  await using db = await createTestDb();
  const now = await dbNow(db.sql);
  const config = db.config.with(CONF);
  const ids = await insertResources(db.sql, ["h1", "h2", "h3", "h4", "h5", "h6"], 2);
  const host = (h: string) => ids.slice((Number(h.slice(1)) - 1) * 2, Number(h.slice(1)) * 2);
  await db.sql`UPDATE resources SET available_upto = 2147483646`;
  // h3: halted, with a job planned soon → woken. h4: halted, its job is far ahead → left.
  await db.sql`UPDATE resources SET state = 'Absent', state_num = 2
    WHERE network_address IN ('h3', 'h4')`;
  await plan(db, host("h3"), now + 10);
  await plan(db, host("h4"), now + 5000);
  // h2: a job planned within the sleep time → kept up.
  await plan(db, host("h2"), now + 100);
  // h5: woken a minute ago → not halted again so soon.
  await addEvent(db.sql, { type: "WAKEUP_NODE", jobId: 0, description: "w", hosts: ["h5"] });
  // h6: never to be halted (available_upto = 2^31-1).
  await db.sql`UPDATE resources SET available_upto = 2147483647 WHERE network_address = 'h6'`;
  // h1 and h6 last ran a job long ago; so did everyone else.
  const d = await energyDecisions(db.sql, config, now);
  assertEquals(d, { halt: ["h1"], wake: ["h3"] });
  // A job that just ended on h1 keeps it up for the idle time.
  await db.sql`UPDATE resources SET last_job_date = ${now - 10} WHERE network_address = 'h1'`;
  assertEquals((await energyDecisions(db.sql, config, now)).halt, []);
  // A planned job that would outlive the host's available_upto does not wake it.
  await db.sql`UPDATE resources SET available_upto = ${now + 50} WHERE network_address = 'h3'`;
  assertEquals((await energyDecisions(db.sql, config, now)).wake, []);
});

Deno.test("energy: greta receives HALT/WAKEUP, or CHECK when there is nothing to do", async () => {
  assertEquals(gretaMessages({ halt: [], wake: [] }), [{ cmd: "CHECK", nodes: [] }]);
  const pull = new PullSocket();
  try {
    const port = bindLoopback(pull);
    await sendToGreta(
      new Config({ GRETA_SERVER: "127.0.0.1", GRETA_PORT: port }),
      gretaMessages({ halt: ["h1"], wake: ["h3", "h4"] }),
    );
    assertEquals(await pull.receiveText({ timeoutMs: 5000 }), '{"cmd": "HALT", "nodes": ["h1"]}');
    assertEquals(
      await pull.receiveText({ timeoutMs: 5000 }),
      '{"cmd": "WAKEUP", "nodes": ["h3", "h4"]}',
    );
  } finally {
    pull.close();
    await terminate();
  }
});
