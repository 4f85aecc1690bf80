/**
 * Acknowledged oarexec reports (issue 11), piece by piece with real sockets and processes:
 * oarexec's sender waits for `OK` and sends again when none comes; the appendice proxy holds a
 * report's connection, tags the commander message and writes `OK` when the acknowledgement
 * comes back on SERVER_PORT; bipbip_commander acknowledges only what bipbip reported handled.
 * (The whole chain under faults: tests/fault_test.ts.)
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { waitFor } from "./support/proc.ts";
import { deliverReport } from "../lib/transport/report.ts";
import { AppendiceProxy } from "../modules/appendice_proxy/proxy.ts";
import {
  AckSender,
  Commander,
  processSpawner,
  processWorkerSpawner,
} from "../modules/bipbip_commander/commander.ts";
import {
  type CommanderMessage,
  encodeAckLine,
  encodeCommanderStartedLine,
  isAckToken,
  newAckToken,
  parseCommanderMessage,
} from "../lib/protocol/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A report server answering each connection as `answer(n)` says: "ack" (read the line, write
 * OK), "silent" (read it, say nothing) or "close" (read it, hang up).
 */
function reportServer(answer: (n: number) => "ack" | "silent" | "close") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lines: string[] = [];
  const open: Deno.Conn[] = [];
  const done = (async () => {
    for (let n = 0;; n++) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      open.push(conn);
      const how = answer(n);
      (async () => {
        const buf = new Uint8Array(1024);
        let text = "";
        while (!text.includes("\n")) {
          const r = await conn.read(buf).catch(() => null);
          if (r === null) return;
          text += dec.decode(buf.subarray(0, r));
        }
        lines.push(text.trim());
        if (how === "ack") await conn.write(enc.encode("OK\n")).catch(() => {});
        if (how === "close") conn.close();
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    lines,
    async close() {
      listener.close();
      await done;
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

const LINE = "OAREXEC_7_0_0_chal\n";

Deno.test("report: sent once when acknowledged", async () => {
  const srv = reportServer(() => "ack");
  try {
    const ok = await deliverReport("127.0.0.1", srv.port, LINE, { ackTimeoutMs: 5000 });
    assertOk(ok);
    assertEquals(srv.lines, ["OAREXEC_7_0_0_chal"]);
  } finally {
    await srv.close();
  }
});

Deno.test("report: no acknowledgement in time, or the connection closed: sent again", async () => {
  const srv = reportServer((n) => (n === 0 ? "silent" : n === 1 ? "close" : "ack"));
  const failures: string[] = [];
  try {
    const t0 = Date.now();
    const ok = await deliverReport("127.0.0.1", srv.port, LINE, {
      ackTimeoutMs: 300,
      initialDelayMs: 20,
      onFailure: (_n, error) => failures.push(error),
    });
    assertOk(ok);
    assertEquals(srv.lines, Array(3).fill("OAREXEC_7_0_0_chal"));
    assertOk(/no acknowledgement within 300 ms/.test(failures[0]), failures[0]);
    assertOk(/closed before the acknowledgement/.test(failures[1]), failures[1]);
    assertOk(Date.now() - t0 >= 300);
  } finally {
    await srv.close();
  }
});

Deno.test("report: never acknowledged, it gives up at the total bound", async () => {
  const srv = reportServer(() => "silent");
  try {
    const t0 = Date.now();
    const ok = await deliverReport("127.0.0.1", srv.port, LINE, {
      ackTimeoutMs: 200,
      initialDelayMs: 20,
      maxTotalMs: 1000,
    });
    assertEquals(ok, false);
    assertOk(srv.lines.length >= 2, `${srv.lines.length} attempts`);
    assertOk(Date.now() - t0 < 3000);
  } finally {
    await srv.close();
  }
});

/** An in-process proxy whose sinks record what they are given. */
function proxyRig(opts: { maxHeldReports?: number } = {}) {
  const toCommander: string[] = [];
  const toAlmighty: string[] = [];
  const proxy = new AppendiceProxy({
    almighty: (t) => Promise.resolve(void toAlmighty.push(t)),
    commander: (t) => Promise.resolve(void toCommander.push(t)),
  }, { hostname: "127.0.0.1", port: 0, ...opts });
  return { proxy, toCommander, toAlmighty };
}

/** Everything a connection receives, as it comes (one reader: no read is ever abandoned). */
function received(conn: Deno.Conn): { text: () => string } {
  let text = "";
  (async () => {
    const buf = new Uint8Array(64);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      text += dec.decode(buf.subarray(0, n));
    }
  })();
  return { text: () => text };
}

function tokenOf(text: string): string {
  const parsed = parseCommanderMessage(text);
  assertOk(parsed.ok, text);
  assertOk(isAckToken(parsed.value.ack), text);
  return parsed.value.ack!;
}

Deno.test("proxy: a report is held until bipbip_commander acknowledges it; then OK", async () => {
  const { proxy, toCommander, toAlmighty } = proxyRig();
  const acks = new AckSender("127.0.0.1", proxy.port);
  const oarexec = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  try {
    const answer = received(oarexec);
    await oarexec.write(enc.encode("OAREXEC_12_0_0_abc\n"));
    await waitFor("the report to reach the commander", () => toCommander.length === 1);
    const token = tokenOf(toCommander[0]);
    assertEquals(proxy.held, 1);
    // A wrong token (a guess, or one from before a restart) changes nothing.
    acks.send(newAckToken());
    await acks.flush();
    assertEquals(proxy.held, 1);
    // Nothing was written before the acknowledgement.
    assertEquals(answer.text(), "");
    acks.send(token);
    await acks.flush();
    await waitFor("OK", () => answer.text() === "OK\n");
    assertEquals(proxy.held, 0);
    assertEquals(proxy.stats.acknowledged, 1);
    assertEquals(acks.sent, 2);
    // Other lines are routed as ever, untagged and unanswered.
    await oarexec.write(enc.encode("OARRUNJOB_3\nQsub\n"));
    await waitFor("the lines to be routed", () => toCommander.length === 2 && toAlmighty.length);
    assertEquals(toCommander[1], '{"job_id": 3, "cmd": "OARRUNJOB", "args": []}');
    assertEquals(toAlmighty, ['{"cmd": "Qsub"}']);
  } finally {
    oarexec.close();
    await proxy.stop();
  }
});

Deno.test("proxy: OAR's oarexec closes at once; its acknowledgement finds nobody, silently", async () => {
  const { proxy, toCommander, toAlmighty } = proxyRig();
  const acks = new AckSender("127.0.0.1", proxy.port);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    await c.write(enc.encode("OAREXEC_13_0_0_abc\n"));
    c.close();
    await waitFor("the report to reach the commander", () => toCommander.length === 1);
    const token = tokenOf(toCommander[0]);
    // The held report goes with its connection.
    await waitFor("the closed client to be forgotten", () => proxy.held === 0);
    acks.send(token);
    await acks.flush();
    // The proxy is unharmed.
    const d = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    await d.write(enc.encode("Qsub\n"));
    d.close();
    await waitFor("Qsub", () => toAlmighty.length === 1);
  } finally {
    await proxy.stop();
  }
});

Deno.test("proxy: a rejected report's connection is closed; oarexec sends it again at once", async () => {
  const { proxy, toCommander } = proxyRig();
  const acks = new AckSender("127.0.0.1", proxy.port);
  try {
    // The real sender, with its acknowledgement timeout far away: only the rejection can
    // bring the second try this soon.
    const t0 = Date.now();
    const delivering = deliverReport("127.0.0.1", proxy.port, LINE, {
      initialDelayMs: 50,
      ackTimeoutMs: 120_000,
    });
    await waitFor("the report", () => toCommander.length === 1);
    acks.reject(tokenOf(toCommander[0]));
    await waitFor("the report again", () => toCommander.length === 2, 5000);
    assertEquals(proxy.stats.released, 1);
    acks.send(tokenOf(toCommander[1]));
    assertEquals(await delivering, true);
    assertOk(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    // A rejection for nothing held changes nothing.
    acks.reject(newAckToken());
    await acks.flush();
    assertEquals(proxy.stats.released, 1);
  } finally {
    await proxy.stop();
  }
});

Deno.test("proxy: a commander's start closes every held report and asks for a scheduling round, once in a while", async () => {
  const { proxy, toCommander, toAlmighty } = proxyRig();
  const acks = new AckSender("127.0.0.1", proxy.port);
  const conns: Deno.Conn[] = [];
  try {
    const ends: Promise<unknown>[] = [];
    for (let i = 1; i <= 3; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
      conns.push(c);
      await c.write(enc.encode(`OAREXEC_${i}_0_0_x\n`));
      // Resolves once the proxy closes the connection.
      ends.push(c.read(new Uint8Array(8)).catch(() => null));
    }
    await waitFor("the reports", () => toCommander.length === 3);
    assertEquals(proxy.held, 3);
    acks.line(encodeCommanderStartedLine());
    await acks.flush();
    assertEquals(await Promise.all(ends), [null, null, null]);
    assertEquals(proxy.held, 0);
    await waitFor("the scheduling round", () => toAlmighty.length === 1);
    assertEquals(toAlmighty, ['{"cmd": "Scheduling"}']);
    // The line carries no secret: repeated at once, it is not acted on again.
    acks.line(encodeCommanderStartedLine());
    await acks.flush();
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(toAlmighty.length, 1);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the proxy */ }
    }
    await proxy.stop();
  }
});

Deno.test("proxy: held reports are bounded; past the bound a report goes untagged", async () => {
  const { proxy, toCommander } = proxyRig({ maxHeldReports: 2 });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 1; i <= 3; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
      conns.push(c);
      await c.write(enc.encode(`OAREXEC_${i}_0_0_x\n`));
      await waitFor(`report ${i}`, () => toCommander.length === i);
    }
    assertEquals(proxy.held, 2);
    assertEquals(proxy.stats.untagged, 1);
    assertEquals(toCommander[2], '{"job_id": 3, "cmd": "OAREXEC", "args": ["0", "0", "x"]}');
  } finally {
    for (const c of conns) c.close();
    await proxy.stop();
  }
});

const tok = (n: number) => String(n).padStart(32, "0");
const report = (id: number, outcome: string): CommanderMessage => ({
  job_id: id,
  cmd: "OAREXEC",
  args: [outcome],
  ack: tok(id),
});

Deno.test("commander: acknowledges a report once bipbip reported it done with 0 or 1, only", async () => {
  // A stand-in for `bipbip --stdin`: answers `done <id> <code>` with the code its invocation
  // names, and leaves without answering at "die" (as if killed between two invocations).
  const worker = processWorkerSpawner(() => ({
    program: "sh",
    args: [
      "-c",
      `while IFS= read -r line; do
         id=$(printf '%s' "$line" | sed 's/^\\["\\([0-9]*\\)","\\([a-z0-9]*\\)".*/\\1/')
         c=$(printf '%s' "$line" | sed 's/^\\["\\([0-9]*\\)","\\([a-z0-9]*\\)".*/\\2/')
         [ "$c" = die ] && exit 0
         echo "done $id $c"
       done`,
    ],
    env: {},
  }));
  const acked: string[] = [];
  const rejected: string[] = [];
  const c = new Commander({
    max: 2,
    childTimeoutMs: 60_000,
    spawn: processSpawner(() => ({ program: "true", args: [], env: {} })),
    worker,
    acknowledge: (t) => acked.push(t),
    reject: (t) => rejected.push(t),
  });
  try {
    c.enqueue(report(1, "0")); // handled
    c.enqueue(report(2, "1")); // a duplicate: the job had ended
    c.enqueue(report(3, "2")); // failed (bad challenge, database down...)
    c.enqueue({ job_id: 4, cmd: "OAREXEC", args: ["0"] }); // OAR's proxy: no token
    c.enqueue(report(5, "die")); // the worker died before reporting it
    await c.idle();
    assertEquals(acked.sort(), [tok(1), tok(2)]);
    assertEquals(c.stats.acknowledged, 2);
    // The others are rejected, for their oarexecs to send them again soon (issue 22).
    assertEquals(rejected.sort(), [tok(3), tok(5)]);
    assertEquals(c.stats.rejected, 2);
  } finally {
    await c.stop(2000);
  }
});

Deno.test("commander: a one-process bipbip is acknowledged on exit 0 only (1 may be a failure)", async () => {
  const acked: string[] = [];
  const c = new Commander({
    max: 2,
    childTimeoutMs: 60_000,
    spawn: processSpawner((_m, args) => ({
      program: "sh",
      args: ["-c", `exit ${args[1]}`],
      env: {},
    })),
    acknowledge: (t) => acked.push(t),
  });
  try {
    c.enqueue(report(1, "0"));
    c.enqueue(report(2, "1"));
    c.enqueue(report(3, "2"));
    await c.idle();
    assertEquals(acked, [tok(1)]);
  } finally {
    await c.stop(2000);
  }
});

Deno.test("commander: a launch that dies unreported is followed by a lost-launch invocation", async () => {
  // A stand-in for `bipbip --stdin` that records its invocations and dies at a bare launch of
  // job 7 (as if killed mid-launch); everything else is done with 0.
  const record = await Deno.makeTempFile();
  const worker = processWorkerSpawner(() => ({
    program: "sh",
    args: [
      "-c",
      `while IFS= read -r line; do
         printf '%s\n' "$line" >> "$0"
         [ "$line" = '["7"]' ] && exit 0
         id=$(printf '%s' "$line" | sed 's/^\\["\\([0-9]*\\)".*/\\1/')
         echo "done $id 0"
       done`,
      record,
    ],
    env: {},
  }));
  const c = new Commander({
    max: 2,
    childTimeoutMs: 60_000,
    spawn: processSpawner(() => ({ program: "true", args: [], env: {} })),
    worker,
    batchWindowMs: 50,
  });
  try {
    c.enqueue({ job_id: 7, cmd: "OARRUN", args: [] });
    c.enqueue({ job_id: 8, cmd: "OARRUN", args: [] });
    await waitFor(
      "the lost launch to be looked at",
      async () => (await Deno.readTextFile(record)).includes('["7","--lost-launch"]'),
    );
    await c.idle();
    // Job 8 was handed to the same worker, which died before reading it: lost as well.
    const lines = (await Deno.readTextFile(record)).trim().split("\n");
    const lost = lines.filter((l) => l.endsWith(',"--lost-launch"]'));
    assertEquals(c.stats.lostLaunches, lost.length, lines.join(" "));
    // Once per job: a lost-launch invocation is not a launch, and is not followed again.
    assertEquals(new Set(lost).size, lost.length, lines.join(" "));
  } finally {
    await c.stop(2000);
    await Deno.remove(record);
  }
});

Deno.test("protocol: commander messages carry an optional ack token; old ones still parse", () => {
  const tagged = { job_id: 10, cmd: "OAREXEC" as const, args: ["2", "N", "34"], ack: tok(5) };
  const p = parseCommanderMessage(
    '{"job_id": 10, "cmd": "OAREXEC", "args": ["2", "N", "34"], "ack": "' + tok(5) + '"}',
  );
  assertEquals(p, { ok: true, value: tagged });
  assertEquals(parseCommanderMessage('{"job_id": 10, "cmd": "OAREXEC", "args": []}'), {
    ok: true,
    value: { job_id: 10, cmd: "OAREXEC", args: [] },
  });
  for (const bad of ['"x"', "12", '"' + "g".repeat(32) + '"', '"' + tok(1) + '0"']) {
    const r = parseCommanderMessage(`{"job_id": 1, "cmd": "OAREXEC", "args": [], "ack": ${bad}}`);
    assertEquals(r.ok, false, bad);
  }
  assertEquals(encodeAckLine(tok(9)), `OARACK_${tok(9)}\n`);
  assertOk(isAckToken(newAckToken()));
  assertOk(newAckToken() !== newAckToken());
});
