/**
 * Hostile input at every socket of the running server (issue 11): random bytes, huge lines and
 * many connections on the proxy's TCP port; random bytes, JSON of the wrong shape, unknown
 * commands and absurd job ids on almighty's and bipbip_commander's ZeroMQ PULL sockets. Job
 * lines naming jobs that do not exist are sent too (a few: each may cost a bipbip process) and
 * must be harmless. Afterwards every daemon is the same process and a normal job still runs.
 * Loopback only; every loop is bounded. OAR_TEST_SEED replays a run.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { daemonPid, Rng, testSeed } from "./support/fault_helpers.ts";
import { TestServer } from "./support/server.ts";
import { PushSocket, terminate } from "../lib/transport/zmq.ts";

/** Job ids no test job can reach: the server is fresh, ids start at 1. */
const GHOST_IDS = [0, 999_999, 1_000_000, 2_147_483_647];
const ABSURD_IDS: unknown[] = [
  -1,
  1.5,
  2 ** 53,
  1e308,
  "12",
  null,
  [],
  {},
  true,
  "0x10",
  -0,
  Number.MAX_SAFE_INTEGER,
];
const WORDS = [
  "Qsub",
  "Qsub -I",
  "Term",
  "Scheduling",
  "Villains",
  "Time",
  "ChState",
  "OAREXEC",
  "OARRUNJOB",
  "LEONEXTERMINATE",
  "OARRUN",
  "CHECK",
  "HALT",
  "",
  "qsub",
  "Qsub ",
  "rm -rf /",
  "$(reboot)",
  "é✓\u0000",
];

const enc = new TextEncoder();

/** One random or mutated ZeroMQ message body. */
function zmqMessage(rng: Rng, target: "almighty" | "commander"): Uint8Array {
  switch (rng.int(0, 7)) {
    case 0:
      return rng.bytes(rng.int(0, 300));
    case 1: // JSON of the right keys but wrong types
      return enc.encode(JSON.stringify({
        cmd: rng.pick<unknown>([1, null, [], {}, "", ...WORDS]),
        job_id: rng.pick(ABSURD_IDS),
        args: rng.pick<unknown>([null, "x", [1, 2], [{}], Array(40).fill("a"), {}]),
      }));
    case 2: // unknown commands
      return enc.encode(JSON.stringify({ cmd: `X${rng.int(0, 1e6)}`, job_id: rng.int(0, 9) }));
    case 3: // not an object
      return enc.encode(rng.pick(["[]", "null", "1", '"Qsub"', "{", "}", "{{}}", "", "\u0000"]));
    case 4: { // a valid message mutated byte by byte
      const base = target === "almighty"
        ? JSON.stringify({ cmd: "Scheduling" })
        : JSON.stringify({ job_id: 999_999, cmd: "OAREXEC", args: ["2", "N", "34"] });
      const b = enc.encode(base);
      for (let i = rng.int(1, 4); i > 0; i--) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return b;
    }
    case 5: // deep nesting and long strings
      return enc.encode("[".repeat(rng.int(1, 5000)) + "]".repeat(rng.int(0, 10)));
    case 6:
      return enc.encode(JSON.stringify({ cmd: "x".repeat(rng.int(1, 70_000)) }));
    default: // absurd job ids with a known command
      return enc.encode(JSON.stringify({
        job_id: rng.pick(ABSURD_IDS),
        cmd: rng.pick(["OAREXEC", "OARRUNJOB", "LEONEXTERMINATE"]),
        args: [],
      }));
  }
}

/** One random line for the proxy (may hold a NUL, control bytes or no newline at all). */
function tcpChunk(rng: Rng): Uint8Array {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.bytes(rng.int(1, 2000));
    case 1:
      return enc.encode(`${rng.pick(WORDS)}\n`);
    case 2: // a job line with an absurd id: out of range or malformed
      return enc.encode(
        `${rng.pick(["OAREXEC", "OARRUNJOB", "LEONEXTERMINATE"])}_${
          rng.pick(["99999999999999999999", "-1", "", "1e9", "x", "1_2_3_4_5"])
        }_${"_".repeat(rng.int(0, 40))}\n`,
      );
    case 3:
      return enc.encode(`${"A".repeat(rng.int(4000, 9000))}\n`);
    case 4:
      return enc.encode("\r\n\n\n\r");
    default:
      return enc.encode(`${String.fromCharCode(rng.int(0, 0x2fff)).repeat(rng.int(1, 50))}\n`);
  }
}

async function writeAll(conn: Deno.TcpConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Garbage over `nConns` connections (20 at a time), `perConn` chunks each; returns chunks sent. */
async function fuzzTcp(rng: Rng, port: number, nConns: number, perConn: number): Promise<number> {
  let sent = 0;
  for (let batch = 0; batch < nConns; batch += 20) {
    const conns = await Promise.all(
      Array.from(
        { length: Math.min(20, nConns - batch) },
        () => Deno.connect({ hostname: "127.0.0.1", port }),
      ),
    );
    await Promise.all(conns.map(async (c) => {
      try {
        for (let i = 0; i < perConn; i++) {
          await writeAll(c, tcpChunk(rng));
          sent++;
        }
      } catch { /* the proxy may close a hostile client: that is its right */ }
      c.close();
    }));
  }
  return sent;
}

Deno.test("fuzz: garbage at every socket leaves every daemon alive and the server working", async () => {
  const seed = testSeed();
  console.log(`fuzz seed ${seed} (OAR_TEST_SEED=${seed} to replay)`);
  const rng = new Rng(seed);
  await using server = await TestServer.create();
  const work = await Deno.makeTempDir({ prefix: "oar-fuzz-work-" });
  try {
    await server.start();
    const before: Record<string, number | undefined> = {};
    for (const m of ["almighty", "appendice_proxy", "bipbip_commander"]) {
      before[m] = await daemonPid(server.varDir, m);
      assertOk(before[m], `${m} runs once\n${await server.leftovers()}`);
    }
    const base = server.portBase;
    const t0 = performance.now();

    // 1. TCP on SERVER_PORT: 400 connections × 20 chunks, one 1 MiB line with no newline for
    // most of it, and 300 idle connections held open at once.
    let tcp = await fuzzTcp(rng, base, 400, 20);
    const huge = await Deno.connect({ hostname: "127.0.0.1", port: base });
    try {
      await writeAll(huge, new Uint8Array(1 << 20).fill(0x41));
      await writeAll(huge, enc.encode("\nTime\n"));
      tcp++;
    } catch { /* closed by the proxy: allowed */ }
    huge.close();
    const idle = await Promise.all(
      Array.from({ length: 300 }, () => Deno.connect({ hostname: "127.0.0.1", port: base })),
    );
    for (const c of idle) c.close();

    // 2. ZeroMQ to almighty (base+4) and bipbip_commander (base+5).
    const almighty = new PushSocket();
    almighty.connect(`tcp://127.0.0.1:${base + 4}`);
    const commander = new PushSocket();
    commander.connect(`tcp://127.0.0.1:${base + 5}`);
    let zmq = 0;
    for (let i = 0; i < 6000; i++) {
      await almighty.send(zmqMessage(rng, "almighty"), { timeoutMs: 5000 });
      await commander.send(zmqMessage(rng, "commander"), { timeoutMs: 5000 });
      zmq += 2;
    }
    // Well-formed job messages for jobs that do not exist: each runs a bipbip/leon that must
    // find nothing to do. Few, since each is a process.
    for (const id of GHOST_IDS) {
      for (const cmd of ["OAREXEC", "OARRUNJOB", "LEONEXTERMINATE"]) {
        await commander.send(JSON.stringify({ job_id: id, cmd, args: ["0", "N", "34"] }));
        zmq++;
      }
    }
    // And the same as legacy lines through the proxy.
    const legacy = await Deno.connect({ hostname: "127.0.0.1", port: base });
    await writeAll(legacy, enc.encode(`OAREXEC_999998_0_N_34\nOARRUNJOB_999997\nQsub\n`));
    legacy.close();
    tcp++;
    almighty.close();
    commander.close();
    await terminate();
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `fuzz: ${tcp} TCP chunks over 701 connections, ${zmq} ZeroMQ messages in ${
        seconds.toFixed(1)
      } s`,
    );

    // 3. The server still works: a normal job runs to Terminated with its output...
    const id = await server.submit(["-d", work, "-l", "core=1", "echo still alive"]);
    assertEquals(await server.finalState(id, 60_000), "Terminated", server.log.slice(-5000));
    assertEquals(await Deno.readTextFile(`${work}/OAR.${id}.stdout`), "still alive\n");
    // ...and no daemon died on the way (the supervisor would have restarted it: same pid means
    // it never had to).
    for (const m of ["almighty", "appendice_proxy", "bipbip_commander"]) {
      assertEquals(await daemonPid(server.varDir, m), before[m], `${m} was restarted`);
    }
    assertEquals(/died \(exit/.test(server.log), false, "a companion died");
    assertEquals(await server.stop(), 0, server.log.slice(-5000));
    // Each daemon did read the garbage: it logged what it dropped. The proxy's rejection log is
    // rate-limited: its first lines may be the clients it refused (over the per-host cap), the
    // rest summed up per host, at the latest when it stops (hence after the stop).
    const drops: Record<string, number> = {};
    for (const m of ["almighty", "appendice_proxy", "bipbip_commander"]) {
      const said = m === "appendice_proxy"
        ? /oar\.modules\.appendice_proxy: "?(dropped a message|client closed|\d+ more rejected lines)/g
        : new RegExp(`oar\\.modules\\.${m}: dropped a message`, "g");
      drops[m] = server.log.match(said)?.length ?? 0;
      assertOk(
        drops[m] > 0,
        `${m} logged no dropped message:\n${
          server.log.split("\n").filter((l) => l.includes(m)).slice(-20).join("\n")
        }`,
      );
    }
    console.log(`fuzz: dropped messages logged ${JSON.stringify(drops)}`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
