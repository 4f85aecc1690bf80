/**
 * almighty as a real process: commands over real ZeroMQ, one-shot modules and companions as
 * real child processes (small scripts in OARDIR that log their runs), supervision and shutdown.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { freePort } from "./support/ports.ts";
import { spawnEntry, waitFor, writeConf } from "./support/proc.ts";
import { PushSocket, terminate } from "../lib/transport/zmq.ts";

const ONE_SHOT = ["meta_sched", "sarko", "finaud", "leon", "node_change_state"];
const COMPANIONS = ["appendice_proxy", "bipbip_commander", "greta"];

async function makeOardir(exitCodes: Record<string, number> = {}): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "oar-test-oardir-" });
  for (const m of ONE_SHOT) {
    await Deno.writeTextFile(
      `${dir}/${m}`,
      `#!/bin/sh\necho "run ${m}" >> "${dir}/runs.log"\nexit ${exitCodes[m] ?? 0}\n`,
      { mode: 0o755 },
    );
  }
  for (const m of COMPANIONS) {
    await Deno.writeTextFile(
      `${dir}/${m}`,
      `#!/bin/sh\necho $$ > "${dir}/${m}.pid"\necho "start ${m}" >> "${dir}/runs.log"\nexec sleep 1000\n`,
      { mode: 0o755 },
    );
  }
  return dir;
}

const runs = async (dir: string) =>
  (await Deno.readTextFile(`${dir}/runs.log`).catch(() => "")).trim().split("\n").filter((l) => l);

/** Companions still alive, from the pid files their scripts write. */
async function pidsOf(dir: string): Promise<number[]> {
  const alive: number[] = [];
  for (const m of COMPANIONS) {
    const pid = Number(await Deno.readTextFile(`${dir}/${m}.pid`).catch(() => "0"));
    if (pid > 0 && existsPid(pid)) {
      alive.push(pid);
    }
  }
  return alive;
}

function existsPid(pid: number): boolean {
  try {
    // A zombie is gone for our purpose: it runs nothing.
    return !Deno.readTextFileSync(`/proc/${pid}/stat`).includes(") Z ");
  } catch {
    return false;
  }
}

Deno.test("almighty: Qsub runs the scheduler then node_change_state; companions supervised; clean stop", async () => {
  const dir = await makeOardir();
  const port = await freePort();
  const conf = await writeConf({
    SERVER_HOSTNAME: "127.0.0.1",
    APPENDICE_SERVER_PORT: port,
    OARDIR: dir,
    SCHEDULER_MIN_TIME_BETWEEN_2_CALLS: 0,
    ENERGY_SAVING_INTERNAL: "YES",
    LOG_FILE: ":stderr:",
    LOG_LEVEL: 3,
  });
  const almighty = spawnEntry("almighty", conf);
  const push = new PushSocket();
  try {
    push.connect(`tcp://127.0.0.1:${port}`);
    await waitFor("companions to start", async () => {
      const r = await runs(dir);
      return COMPANIONS.every((c) => r.includes(`start ${c}`));
    });
    await push.send('{"cmd": "Qsub"}');
    await waitFor("a scheduling round", async () => {
      const r = await runs(dir);
      const i = r.indexOf("run meta_sched");
      return i >= 0 && r.indexOf("run node_change_state") > i;
    });

    // A companion that dies is restarted; what it held is lost, so almighty asks itself for a
    // scheduling round and Leon.
    const proxyPid = Number(await Deno.readTextFile(`${dir}/appendice_proxy.pid`));
    assertOk(proxyPid > 0, "appendice_proxy is not running");
    const before = (await runs(dir)).length;
    Deno.kill(proxyPid, "SIGKILL");
    await waitFor(
      "appendice_proxy to be restarted",
      async () => (await runs(dir)).filter((l) => l === "start appendice_proxy").length === 2,
    );
    await waitFor("a round and Leon after the restart", async () => {
      const after = (await runs(dir)).slice(before);
      return after.includes("run meta_sched") && after.includes("run leon");
    });

    // Garbage on the command socket is dropped; almighty keeps working.
    await push.send(new Uint8Array([0xff, 0x00, 0x7b]));
    await push.send('{"no": "cmd"}');
    await push.send('{"cmd": "Villains"}');
    await waitFor("sarko to run", async () => (await runs(dir)).includes("run sarko"));

    const status = await almighty.stop();
    assertEquals(status.code, 10, almighty.output());
    await waitFor("no child left", async () => (await pidsOf(dir)).length === 0);
  } finally {
    push.close();
    await terminate();
    await almighty.stop();
    for (const pid of await pidsOf(dir)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(conf.replace(/\/oar\.conf$/, ""), { recursive: true });
  }
});

Deno.test("almighty: an unexpected exit code from the scheduler stops it with 10", async () => {
  const dir = await makeOardir({ meta_sched: 7 });
  const port = await freePort();
  const conf = await writeConf({
    SERVER_HOSTNAME: "127.0.0.1",
    APPENDICE_SERVER_PORT: port,
    OARDIR: dir,
    LOG_FILE: ":stderr:",
  });
  const almighty = spawnEntry("almighty", conf);
  const push = new PushSocket();
  try {
    push.connect(`tcp://127.0.0.1:${port}`);
    await push.send('{"cmd": "Scheduling"}');
    const status = await waitFor("almighty to stop", async () => {
      const s = await Promise.race([
        almighty.child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 50)),
      ]);
      return s ?? undefined;
    }, 20_000);
    assertEquals(status.code, 10);
    await waitFor("no child left", async () => (await pidsOf(dir)).length === 0);
  } finally {
    push.close();
    await terminate();
    await almighty.stop();
    for (const pid of await pidsOf(dir)) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(conf.replace(/\/oar\.conf$/, ""), { recursive: true });
  }
});

Deno.test("almighty killed with SIGKILL: its real companions stop by themselves", async () => {
  const [proxyPort, almightyPort, commanderPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const conf = await writeConf({
    SERVER_HOSTNAME: "127.0.0.1",
    SERVER_PORT: proxyPort,
    APPENDICE_SERVER_PORT: almightyPort,
    BIPBIP_COMMANDER_SERVER: "127.0.0.1",
    BIPBIP_COMMANDER_PORT: commanderPort,
    LOG_FILE: ":stderr:",
  });
  const almighty = spawnEntry("almighty", conf);
  const listening = async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: proxyPort })).close();
      return true;
    } catch {
      return false;
    }
  };
  try {
    await waitFor("the proxy to listen", listening, 20_000);
    almighty.child.kill("SIGKILL");
    await waitFor("the proxy to stop", async () => !(await listening()), 20_000);
    // bipbip_commander has released its port too: binding it works again.
    await waitFor("bipbip_commander to stop", () => {
      try {
        Deno.listen({ hostname: "127.0.0.1", port: commanderPort }).close();
        return true;
      } catch {
        return false;
      }
    }, 20_000);
  } finally {
    await almighty.stop();
    await Deno.remove(conf.replace(/\/oar\.conf$/, ""), { recursive: true });
  }
});

Deno.test("almighty loop: a deferred scheduling request wakes the loop when it becomes allowed", async () => {
  const { runLoop } = await import("../modules/almighty/loop.ts");
  const { DEFAULT_SETTINGS } = await import("../modules/almighty/automaton.ts");
  let clock = 1000;
  const timeouts: number[] = [];
  const runs: string[] = [];
  const rounds: number[] = [];
  // The second Qsub comes once the first round ran.
  const inbox = [{ cmd: "Qsub", afterRuns: 0 }, { cmd: "Qsub", afterRuns: 1 }];
  const stop = new AbortController();
  const code = await runLoop(
    {
      receive(timeoutMs) {
        timeouts.push(timeoutMs);
        if (inbox.length > 0 && runs.length >= inbox[0].afterRuns) {
          const { cmd } = inbox.shift()!;
          return Promise.resolve(new TextEncoder().encode(`{"cmd":"${cmd}"}`));
        }
        // A drain (timeout 0) finds nothing more; the clock does not move for it.
        if (timeoutMs === 0) return Promise.resolve(null);
        // The timeout elapses on the injected clock.
        clock += timeoutMs / 1000;
        if (runs.filter((m) => m === "meta_sched").length >= 2) stop.abort();
        return Promise.resolve(null);
      },
      runModule(module) {
        runs.push(module);
        if (module === "meta_sched") rounds.push(clock);
        clock += 0.5;
        return Promise.resolve(0);
      },
      now: () => clock,
    },
    { ...DEFAULT_SETTINGS, minBetween: 5, villainsTimeout: 1e9, finaudPeriod: 0 },
    stop.signal,
  );
  assertEquals(code, 10);
  // The second Qsub comes as the first round ends (1000.5), and is taken with its exit code;
  // node_change_state runs until 1001; the Qsub is then too early, so the loop sleeps exactly
  // until 1005.5 (not a whole read timeout) and runs it then.
  assertEquals(rounds, [1000, 1005.5]);
  assertEquals(timeouts.filter((t) => t > 0).slice(0, 2), [5000, 4500]);
});

Deno.test("almighty loop: a burst of commands waiting in the socket collapses into one run each", async () => {
  const { runLoop } = await import("../modules/almighty/loop.ts");
  const { DEFAULT_SETTINGS } = await import("../modules/almighty/automaton.ts");
  let clock = 1000;
  const runs: string[] = [];
  // Eighteen ChState and two Qsub sent while almighty was busy: all are in the socket at once.
  const inbox = [...Array(9).fill("ChState"), "Qsub", ...Array(9).fill("ChState"), "Qsub"];
  const stop = new AbortController();
  await runLoop(
    {
      receive(timeoutMs) {
        const cmd = inbox.shift();
        if (cmd !== undefined) return Promise.resolve(new TextEncoder().encode(`{"cmd":"${cmd}"}`));
        if (timeoutMs > 0) stop.abort();
        return Promise.resolve(null);
      },
      runModule(module) {
        runs.push(module);
        clock += 0.5;
        return Promise.resolve(0);
      },
      now: () => clock,
    },
    { ...DEFAULT_SETTINGS, minBetween: 0, villainsTimeout: 1e9, finaudPeriod: 0 },
    stop.signal,
  );
  // One node_change_state for the eighteen ChStates; one after each round (the two Qsubs are
  // one round, plus the periodic one the first Time update asks for).
  const count = (m: string) => runs.filter((r) => r === m).length;
  assertEquals(runs[0], "node_change_state");
  assertOk(count("meta_sched") <= 2, runs.join(","));
  assertEquals(count("node_change_state"), count("meta_sched") + 1, runs.join(","));
});
