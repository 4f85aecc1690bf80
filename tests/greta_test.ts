/**
 * greta on a real database with real node-manager commands (shell scripts), the cases of the
 * reference's test_greta.py plus docs/differences.md §11, and greta as a real process resuming its
 * state.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { insertResources } from "./support/fixtures.ts";
import { freePort } from "./support/ports.ts";
import { spawnEntry, waitFor } from "./support/proc.ts";
import {
  fillTimeouts,
  getTimeout,
  type KeepAlive,
  type KeepAliveError,
  parseKeepAlive,
} from "../modules/greta/config.ts";
import { WindowForker } from "../modules/greta/forker.ts";
import { Greta } from "../modules/greta/greta.ts";
import { RecordingNotifier } from "../lib/transport/notifier.ts";
import { PushSocket, terminate } from "../lib/transport/zmq.ts";

Deno.test("greta config: timeouts and keep-alive (test_fill_timeouts, test_get_timeout, keepalive)", () => {
  assertEquals([...fillTimeouts("10").table], [[1, 10]]);
  assertEquals([...fillTimeouts("  1:500  11:1000 21:2000 ").table], [[1, 500], [11, 1000], [
    21,
    2000,
  ]]);
  assertEquals([...fillTimeouts("junk").table], [[1, 900]]);
  const t = new Map([[1, 500], [11, 1000], [21, 2000], [30, 3000]]);
  assertEquals(getTimeout(t, 15), 1000);
  assertEquals(getTimeout(t, 1), 500);
  assertEquals(getTimeout(t, 40), 3000);
  const code = (v: string) => {
    try {
      parseKeepAlive(v);
      return 0;
    } catch (e) {
      return (e as KeepAliveError).exitCode;
    }
  };
  assertEquals(code("bad"), 3);
  assertEquals(code("type='default':3, bad:bad"), 2);
  assertEquals(parseKeepAlive("type='default':0"), [{ condition: "type='default'", min: 0 }]);
});

interface Rig {
  db: TestDb;
  dir: string;
  greta: Greta;
  forker: WindowForker;
  notifier: RecordingNotifier;
}

/** localhost0,1 Alive, localhost2,3 Absent, two resources each (as the reference's fixture). */
async function rig(
  opts: {
    keepAlive?: KeepAlive[];
    halt?: string;
    wake?: string;
    size?: number;
    timeoutMs?: number;
  } = {},
): Promise<Rig> {
  const db = await createTestDb();
  const dir = await Deno.makeTempDir({ prefix: "oar-greta-" });
  db.addTempDir(dir);
  await insertResources(db.sql, ["localhost0", "localhost1", "localhost2", "localhost3"], 2);
  await db.sql`UPDATE resources SET available_upto = 2147483646`;
  await db.sql`UPDATE resources SET state = 'Absent', state_num = 2
    WHERE network_address IN ('localhost2', 'localhost3')`;
  const forker = new WindowForker({
    size: opts.size ?? 20,
    timeoutMs: opts.timeoutMs ?? 10_000,
    commands: {
      HALT: opts.halt ?? `cat >> ${dir}/halted`,
      WAKEUP: opts.wake ?? `cat >> ${dir}/woken`,
    },
  });
  const notifier = new RecordingNotifier();
  const greta = new Greta({
    sql: db.sql,
    notifier,
    forker,
    keepAlive: opts.keepAlive ?? [{ condition: "type='default'", min: 0 }],
    timeouts: new Map([[1, 900]]),
    stateDir: dir,
  });
  return { db, dir, greta, forker, notifier };
}

async function done(r: Rig): Promise<void> {
  await r.forker.stop();
  await r.db.drop();
}

const running = (r: Rig) =>
  Object.fromEntries(Object.entries(r.greta.state.running).map(([h, c]) => [h, c.command]));

async function nextState(r: Rig, host: string): Promise<string> {
  const [row] = await r.db
    .sql`SELECT DISTINCT next_state FROM resources WHERE network_address = ${host}`;
  return row.next_state;
}

async function eventCount(r: Rig, type: string): Promise<number> {
  const [row] = await r.db.sql`SELECT count(*)::int AS n FROM event_logs WHERE type = ${type}`;
  return row.n;
}

Deno.test("greta: CHECK on an idle platform does nothing", async () => {
  const r = await rig();
  try {
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), {});
  } finally {
    await done(r);
  }
});

Deno.test("greta: HALT runs the halt command with the host on stdin and marks it Absent", async () => {
  const r = await rig();
  try {
    await r.greta.handle({ cmd: "HALT", nodes: ["localhost0"] });
    assertEquals(running(r), { localhost0: "HALT" });
    assertEquals(await nextState(r, "localhost0"), "Absent");
    assertEquals(r.notifier.almightyCommands, ["ChState"]);
    assertEquals(await eventCount(r, "HALT_NODE"), 1);
    await waitFor(
      "the halt command",
      async () => (await Deno.readTextFile(`${r.dir}/halted`).catch(() => "")) === "localhost0\n",
    );
    // A finished HALT leaves the running list on the next check.
    await r.forker.changed();
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), {});
  } finally {
    await done(r);
  }
});

Deno.test("greta: keep-alive wakes a node (test_greta_check_wakeup_for_min_nodes)", async () => {
  const r = await rig({ keepAlive: [{ condition: "type='default'", min: 3 }] });
  try {
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), { localhost2: "WAKEUP" });
    assertEquals(await eventCount(r, "WAKEUP_NODE"), 1);
  } finally {
    await done(r);
  }
});

Deno.test("greta: keep-alive refuses a halt and wakes instead (test_greta_halt_keepalive)", async () => {
  const r = await rig({ keepAlive: [{ condition: "type='default'", min: 3 }] });
  try {
    await r.greta.handle({ cmd: "HALT", nodes: ["localhost0"] });
    assertEquals(running(r), { localhost2: "WAKEUP" });
    assertEquals(await nextState(r, "localhost0"), "UnChanged");
  } finally {
    await done(r);
  }
});

Deno.test("greta: WAKEUP, pending WAKEUP, reminders replayed once (docs/differences.md §11)", async () => {
  const r = await rig();
  try {
    await r.greta.handle({ cmd: "WAKEUP", nodes: ["localhost2"] });
    assertEquals(running(r), { localhost2: "WAKEUP" });
    // Already pending: nothing new, nothing to remind.
    await r.greta.handle({ cmd: "WAKEUP", nodes: ["localhost2"] });
    assertEquals(running(r), { localhost2: "WAKEUP" });
    assertEquals(r.greta.state.toRemind, {});
    // A HALT while it boots is remembered (test_greta_halt_wakeup_already_pending).
    await r.greta.handle({ cmd: "HALT", nodes: ["localhost2"] });
    assertEquals(r.greta.state.toRemind, { localhost2: "HALT" });
    // The node comes up: it leaves the running list, and the reminder is replayed, once.
    await r.db.sql`UPDATE resources SET state = 'Alive' WHERE network_address = 'localhost2'`;
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), { localhost2: "HALT" });
    assertEquals(r.greta.state.toRemind, {});
  } finally {
    await done(r);
  }
});

Deno.test("greta: a WAKEUP past its timeout suspects the node (test_greta_wakeup_already_timeouted)", async () => {
  const r = await rig();
  try {
    r.greta.state.running = { localhost2: { command: "WAKEUP", timeout: -1 } };
    await r.greta.handle({ cmd: "WAKEUP", nodes: ["localhost2"] });
    assertEquals(running(r), {});
    assertEquals(await nextState(r, "localhost2"), "Suspected");
    assertEquals(await eventCount(r, "LOG_SUSPECTED"), 1);
  } finally {
    await done(r);
  }
});

Deno.test("greta: a booted node is cleaned from the running list (test_greta_check_clean_booted_node)", async () => {
  const r = await rig();
  try {
    r.greta.state.running = { localhost0: { command: "WAKEUP", timeout: 2147483000 } };
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), {});
  } finally {
    await done(r);
  }
});

Deno.test("greta: a failing command suspects the node; a halt over the window timeout too", async () => {
  const r = await rig({ halt: "exit 3", timeoutMs: 200 });
  try {
    await r.greta.handle({ cmd: "HALT", nodes: ["localhost0"] });
    await r.forker.changed();
    await r.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(r), {});
    assertEquals(await nextState(r, "localhost0"), "Suspected");
  } finally {
    await done(r);
  }
  const slow = await rig({ halt: "sleep 30", timeoutMs: 200 });
  try {
    const t0 = Date.now();
    await slow.greta.handle({ cmd: "HALT", nodes: ["localhost1"] });
    await slow.forker.changed();
    assertOk(Date.now() - t0 < 5000, "the command was not killed at the window timeout");
    await slow.greta.handle({ cmd: "CHECK", nodes: [] });
    assertEquals(running(slow), {});
    assertEquals(await nextState(slow, "localhost1"), "Suspected");
    const [ev] = await slow.db.sql`SELECT description FROM event_logs WHERE type = 'LOG_SUSPECTED'`;
    assertStringIncludes(ev.description, "timeouted");
  } finally {
    await done(slow);
  }
});

Deno.test("greta: the window never runs more than its size", async () => {
  const f = new WindowForker({
    size: 2,
    timeoutMs: 10_000,
    commands: { HALT: "sleep 0.2", WAKEUP: "sleep 0.2" },
  });
  for (let i = 0; i < 6; i++) f.submit(`n${i}`, i % 2 ? "HALT" : "WAKEUP");
  let finished = 0;
  while (finished < 6) {
    await f.changed();
    finished += f.takeFinished().length;
  }
  assertEquals(f.peak, 2);
  await f.stop();
});

Deno.test("greta: state saved after each message and restored once", async () => {
  const r = await rig({ halt: "sleep 30" });
  try {
    await r.greta.handle({ cmd: "HALT", nodes: ["localhost0"] });
    const again = new Greta({ ...r.greta.deps });
    await again.restore();
    assertEquals(Object.keys(again.state.running), ["localhost0"]);
    let gone = false;
    try {
      await Deno.stat(`${r.dir}/greta_status.json`);
    } catch {
      gone = true;
    }
    assertOk(gone, "the saved state must be removed once restored");
  } finally {
    await done(r);
  }
});

Deno.test("greta process: killed mid-way, a new one resumes from the saved state", async () => {
  const db = await createTestDb();
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "oar-greta-rt-" });
  db.addTempDir(dir);
  await insertResources(db.sql, ["localhost0", "localhost1"], 2);
  const conf = await writeConfigFile(db, {
    GRETA_SERVER: "127.0.0.1",
    GRETA_PORT: port,
    SERVER_HOSTNAME: "127.0.0.1",
    APPENDICE_SERVER_PORT: await freePort(),
    OAR_RUNTIME_DIRECTORY: dir,
    // A distinctive duration, so the orphaned command can be found and stopped at the end.
    ENERGY_SAVING_NODE_MANAGER_SLEEP_CMD: "sleep 29.123",
    LOG_FILE: ":stderr:",
    LOG_LEVEL: 3,
  });
  const push = new PushSocket();
  let greta = spawnEntry("greta", conf);
  try {
    push.connect(`tcp://127.0.0.1:${port}`);
    await push.send('{"cmd": "HALT", "nodes": ["localhost0"]}');
    await waitFor("the halt to be recorded", async () => {
      const text = await Deno.readTextFile(`${dir}/greta_status.json`).catch(() => "");
      return text.includes("localhost0");
    }, 20_000).catch((e) => {
      throw new Error(`${e.message}; greta said: ${greta.output()}`);
    });
    greta.child.kill("SIGKILL");
    await greta.stop();
    greta = spawnEntry("greta", conf);
    await waitFor(
      "the state to be restored",
      () => greta.output().includes("restored state: 1 commands running"),
      20_000,
    );
    const status = await greta.stop();
    assertEquals(status.code, 0, greta.output());
  } finally {
    push.close();
    await terminate();
    await greta.stop();
    // The halt command of the killed greta runs in its own session: stop it.
    await new Deno.Command("pkill", { args: ["-f", "sleep 29.123"] }).output();
    await db.drop();
  }
});

Deno.test("greta process: a keep-alive condition that is not a property expression is refused", async () => {
  const db = await createTestDb();
  try {
    const conf = await writeConfigFile(db, {
      GRETA_SERVER: "127.0.0.1",
      GRETA_PORT: await freePort(),
      ENERGY_SAVING_NODES_KEEPALIVE: "1=1; DROP TABLE jobs:2",
      LOG_FILE: ":stderr:",
    });
    const greta = spawnEntry("greta", conf);
    const status = await greta.child.status;
    await greta.stop();
    assertEquals(status.code, 2, greta.output());
    const [t] = await db.sql`SELECT to_regclass('jobs') IS NOT NULL AS present`;
    assertEquals(t.present, true);
  } finally {
    await db.drop();
  }
});
