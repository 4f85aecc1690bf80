/**
 * Issue 20's attacks on the appendice proxy, each with a real proxy process, real sockets and (for
 * the challenge check) a real database: idle blank-line clients, a flood of forged reports, a peer
 * not allowed, and the quick start's bind address.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { bindLoopback, freePort } from "./support/ports.ts";
import { type Running, spawnEntry, waitFor, writeConf } from "./support/proc.ts";
import { PullSocket, terminate } from "../lib/transport/zmq.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";
import { insertJob } from "./support/fixtures.ts";
import { embeddedConfig } from "../tools/embedded/setup.ts";
import { Config } from "../lib/runtime/config.ts";
import { denoRunArgs } from "../lib/permissions/mod.ts";
import { serverBindAddress } from "../lib/runtime/entry_flags.ts";

const enc = new TextEncoder();

interface Rig {
  port: number;
  commander: PullSocket;
  almighty: PullSocket;
  proxy: Running;
}

async function startProxy(
  extra: Record<string, string | number>,
  db?: TestDb,
): Promise<Rig> {
  const port = await freePort();
  const almighty = new PullSocket();
  const commander = new PullSocket();
  const values = {
    SERVER_HOSTNAME: "127.0.0.1",
    SERVER_PORT: port,
    APPENDICE_SERVER_PORT: bindLoopback(almighty),
    BIPBIP_COMMANDER_SERVER: "127.0.0.1",
    BIPBIP_COMMANDER_PORT: bindLoopback(commander),
    LOG_FILE: ":stderr:",
    LOG_LEVEL: 3,
    ...extra,
  };
  const conf = db ? await writeConfigFile(db, values) : await writeConf(values);
  const proxy = spawnEntry("appendice_proxy", conf);
  await waitFor("the proxy to listen", async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      return false;
    }
  });
  return { port, commander, almighty, proxy };
}

async function stopProxy(r: Rig): Promise<void> {
  const status = await r.proxy.stop();
  assertEquals(status.code, 0, r.proxy.output());
  r.almighty.close();
  r.commander.close();
  await terminate();
}

/** Sends one line on a connection of its own; the connection is returned open. */
async function sendLine(port: number, line: string): Promise<Deno.TcpConn | null> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(enc.encode(line));
    return c;
  } catch {
    return null;
  }
}

/** Receives messages until one includes `want`; the ms it took, or null past `timeoutMs`. */
async function waitMessage(s: PullSocket, want: string, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const m = await s.receiveText({ timeoutMs: Math.max(1, timeoutMs - (performance.now() - t0)) });
    if (m !== null && m.includes(want)) return performance.now() - t0;
  }
  return null;
}

Deno.test("proxy: clients sending only blank lines are closed at the idle timeout; a report gets in", async () => {
  // Before (issue 20): blank lines reset the idle timer, the slots stayed held for good.
  const r = await startProxy({
    APPENDICE_PROXY_CHECK_CHALLENGES: "no",
    APPENDICE_PROXY_MAX_CONNECTIONS: 20,
    APPENDICE_PROXY_MAX_CONNECTIONS_PER_HOST: 1000,
    APPENDICE_PROXY_IDLE_TIMEOUT: 2,
  });
  const idlers: Deno.TcpConn[] = [];
  let keep = true;
  try {
    for (let i = 0; i < 20; i++) {
      idlers.push(await Deno.connect({ hostname: "127.0.0.1", port: r.port }));
    }
    const ticker = (async () => {
      while (keep) {
        for (const c of idlers) await c.write(enc.encode("\n \n")).catch(() => {});
        await new Promise((res) => setTimeout(res, 300));
      }
    })();
    // Give every idler its slot, then keep trying a real report for 8 s.
    await new Promise((res) => setTimeout(res, 500));
    const t0 = performance.now();
    let got: number | null = null;
    while (got === null && performance.now() - t0 < 8000) {
      const c = await sendLine(r.port, "OAREXEC_77_0_0_abc\n");
      got = await waitMessage(r.commander, "abc", 500);
      c?.close();
    }
    keep = false;
    await ticker;
    const ms = performance.now() - t0;
    console.log(`report through after ${ms.toFixed(0)} ms with 20 blank-line clients`);
    assertOk(got !== null, "the report never got through");
    assertOk(ms < 5000, `took ${ms} ms`);
  } finally {
    keep = false;
    for (const c of idlers) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await stopProxy(r);
  }
});

Deno.test("proxy: clients over the per-address cap are closed at once", async () => {
  const r = await startProxy({
    APPENDICE_PROXY_CHECK_CHALLENGES: "no",
    APPENDICE_PROXY_MAX_CONNECTIONS_PER_HOST: 5,
    APPENDICE_PROXY_IDLE_TIMEOUT: 5,
  });
  const conns: Deno.TcpConn[] = [];
  try {
    // The start-up probe's connection is let go first.
    await new Promise((res) => setTimeout(res, 300));
    for (let i = 0; i < 5; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: r.port }));
    }
    await new Promise((res) => setTimeout(res, 200));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: r.port });
    const t0 = performance.now();
    const n = await extra.read(new Uint8Array(8)).catch(() => null);
    const ms = performance.now() - t0;
    assertEquals(n, null, r.proxy.output());
    assertOk(ms < 2000, `closed after ${ms} ms: ${r.proxy.output()}`);
    extra.close();
  } finally {
    for (const c of conns) c.close();
    await stopProxy(r);
  }
});

Deno.test("proxy: a flood of forged reports costs no bipbip run, one event, and does not delay an honest one", async () => {
  await using db = await createTestDb();
  const { jobId } = await insertJob(db.sql, { state: "Running" });
  await db.sql`UPDATE challenges SET challenge = 'honest42' WHERE job_id = ${jobId}`;
  const { jobId: other } = await insertJob(db.sql, { state: "Running" });
  await db.sql`UPDATE challenges SET challenge = 'other42' WHERE job_id = ${other}`;
  const r = await startProxy({ APPENDICE_PROXY_MAX_CONNECTIONS_PER_HOST: 64 }, db);
  let flooding = true;
  let forged = 0;
  try {
    // Idle figure first.
    const idleConn = await sendLine(r.port, `OAREXEC_${other}_0_0_other42\n`);
    const idle = await waitMessage(r.commander, "other42", 5000);
    idleConn?.close();
    assertOk(idle !== null, "the idle report did not get through");
    // The flood: 8 hostile clients, each writing 2,000 forged reports at a time, reconnecting.
    const flooders = Array.from({ length: 8 }, async (_, k) => {
      while (flooding) {
        const lines = Array.from(
          { length: 2000 },
          (_, i) => `OAREXEC_${jobId}_0_0_guess${k}x${forged + i}\n`,
        ).join("");
        forged += 2000;
        const c = await sendLine(r.port, lines);
        await c?.read(new Uint8Array(16)).catch(() => null);
        try {
          c?.close();
        } catch { /* closed */ }
      }
    });
    await new Promise((res) => setTimeout(res, 1000));
    const conn = await sendLine(r.port, `OAREXEC_${jobId}_0_0_honest42\n`);
    const under = await waitMessage(r.commander, "honest42", 10_000);
    conn?.close();
    flooding = false;
    await Promise.all(flooders);
    console.log(
      `honest report: idle ${idle.toFixed(1)} ms, under a flood of ${forged} forged lines ${
        under?.toFixed(1)
      } ms`,
    );
    assertOk(under !== null, "the honest report did not get through");
    assertOk(under < 2000, `the honest report took ${under} ms`);
    // No forged report reached bipbip_commander.
    const leak = await r.commander.receiveText({ timeoutMs: 300 });
    assertEquals(leak, null);
  } finally {
    flooding = false;
    await stopProxy(r);
  }
  // Written at the stop (or each minute): one row for the job, not one per line.
  const rows = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM event_logs WHERE type = 'BIPBIP_CHALLENGE'`;
  console.log(`BIPBIP_CHALLENGE events: ${rows[0].n} for ${forged} forged lines`);
  assertEquals(rows[0].n, 1);
});

Deno.test("proxy: a peer not in SERVER_ALLOWED_HOSTS is refused", async () => {
  const r = await startProxy({
    APPENDICE_PROXY_CHECK_CHALLENGES: "no",
    SERVER_ALLOWED_HOSTS: "10.11.12.13",
  });
  try {
    const c = await sendLine(r.port, "OARRUNJOB_5\n");
    const n = await c?.read(new Uint8Array(8)).catch(() => null);
    assertEquals(n ?? null, null);
    c?.close();
    assertEquals(await r.commander.receiveText({ timeoutMs: 500 }), null);
    await waitFor("the refusal to be logged", () => r.proxy.output().includes("not allowed"));
  } finally {
    await stopProxy(r);
  }
});

Deno.test("proxy: the quick start (local launcher) listens on loopback only", async () => {
  const conf = new Config(
    embeddedConfig({ socketDir: "/tmp", port: 5432 }, "oar", { user: "oar" } as never, "/tmp"),
  );
  assertEquals(serverBindAddress(conf), "127.0.0.1");
  const net = denoRunArgs("appendice_proxy", conf, []).find((a) => a.startsWith("--allow-net"));
  assertOk(net?.includes(`127.0.0.1:${conf.int("SERVER_PORT")}`), net);
  assertOk(!net?.includes("0.0.0.0"), net);
  // A real proxy with the local launcher: not reachable on a non-loopback address.
  const r = await startProxy({
    APPENDICE_PROXY_CHECK_CHALLENGES: "no",
    OAREXEC_LAUNCHER: "local",
  });
  try {
    const other = Deno.networkInterfaces().find((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.")
    );
    if (other !== undefined) {
      let reached = true;
      try {
        (await Deno.connect({ hostname: other.address, port: r.port })).close();
      } catch {
        reached = false;
      }
      assertEquals(reached, false, `reached on ${other.address}`);
    }
  } finally {
    await stopProxy(r);
  }
});
