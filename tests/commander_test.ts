/**
 * bipbip_commander's queue with real child processes (shell scripts standing in for bipbip and
 * leon, logging when they start and end).
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import {
  Commander,
  processSpawner,
  processWorkerSpawner,
} from "../modules/bipbip_commander/commander.ts";
import type { CommanderMessage } from "../lib/protocol/mod.ts";

/** A spawner running `sh -c` that logs "start <job>" / "end <job>" around a sleep. */
function scriptSpawner(log: string, sleep: number) {
  return processSpawner((_module, args) => ({
    program: "sh",
    args: ["-c", `echo "start $1" >> "$0"; sleep ${sleep}; echo "end $1" >> "$0"`, log, args[0]],
    env: {},
  }));
}

async function events(log: string): Promise<[string, number][]> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.trim().split("\n").filter((l) => l).map((l) => {
    const [what, id] = l.split(" ");
    return [what, Number(id)];
  });
}

/** The most children that were between their start and end lines at once. */
function maxConcurrency(ev: [string, number][]): number {
  let cur = 0, max = 0;
  for (const [what] of ev) {
    cur += what === "start" ? 1 : -1;
    max = Math.max(max, cur);
  }
  return max;
}

const msg = (id: number, cmd: CommanderMessage["cmd"] = "OARRUN"): CommanderMessage => ({
  job_id: id,
  cmd,
  args: [],
});

Deno.test("commander: at most MAX children at once (docs/differences.md §9: not MAX+1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = new Commander({
      max: 3,
      childTimeoutMs: 60_000,
      spawn: scriptSpawner(`${dir}/log`, 0.15),
    });
    for (let i = 1; i <= 10; i++) c.enqueue(msg(i));
    assertEquals(c.running, 3);
    await c.idle();
    const ev = await events(`${dir}/log`);
    assertEquals(ev.length, 20);
    assertEquals(maxConcurrency(ev), 3);
    assertEquals(c.stats.started, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commander: one child at a time per job; duplicates wait their turn, in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = new Commander({
      max: 10,
      childTimeoutMs: 60_000,
      spawn: scriptSpawner(`${dir}/log`, 0.1),
    });
    c.enqueue(msg(7, "OARRUN"));
    c.enqueue(msg(7, "OAREXEC"));
    c.enqueue(msg(8));
    c.enqueue(msg(7, "LEONEXTERMINATE"));
    assertEquals([c.running, c.queued], [2, 2]);
    await c.idle();
    const ev = await events(`${dir}/log`);
    const job7 = ev.filter(([, id]) => id === 7).map(([w]) => w);
    assertEquals(job7, ["start", "end", "start", "end", "start", "end"]);
    assertEquals(c.stats.started, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commander: a child over its time limit is killed and reaped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = new Commander({
      max: 2,
      childTimeoutMs: 200,
      spawn: scriptSpawner(`${dir}/log`, 30),
    });
    const t0 = Date.now();
    c.enqueue(msg(1));
    await c.idle();
    assertOk(Date.now() - t0 < 10_000, "the child was not killed in time");
    // The killed launch is followed once by `bipbip 1 --lost-launch` (issue 22), killed too
    // here (the same script), and not followed again.
    assertEquals(c.stats.killed, 2);
    assertEquals(c.stats.lostLaunches, 1);
    assertEquals(c.running, 0);
    assertEquals(await events(`${dir}/log`), [["start", 1], ["start", 1]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commander: a burst of thousands of messages is queued and drained", async () => {
  const spawn = processSpawner(() => ({ program: "true", args: [], env: {} }));
  const c = new Commander({ max: 25, childTimeoutMs: 60_000, spawn });
  for (let i = 0; i < 2000; i++) c.enqueue(msg(i % 1000));
  await c.idle();
  assertEquals(c.stats.started, 2000);
  assertEquals(c.stats.finished, 2000);
});

Deno.test("commander: a child that cannot start is logged, not fatal", async () => {
  const c = new Commander({
    max: 2,
    childTimeoutMs: 1000,
    spawn: processSpawner(() => ({ program: "/nonexistent/bipbip", args: [], env: {} })),
  });
  c.enqueue(msg(1));
  c.enqueue(msg(2));
  await c.idle();
  // Each launch died (setsid could not run it), and was followed once by a lost-launch
  // invocation (issue 22), which could not run either.
  assertEquals(c.stats.finished, 4);
  assertEquals(c.stats.lostLaunches, 2);
  c.enqueue(msg(3));
  await c.idle();
  assertEquals(c.stats.finished, 6);
});

Deno.test("commander: stop() terminates running children", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = new Commander({
      max: 2,
      childTimeoutMs: 60_000,
      spawn: scriptSpawner(`${dir}/log`, 30),
    });
    c.enqueue(msg(1));
    c.enqueue(msg(2));
    c.enqueue(msg(3));
    const t0 = Date.now();
    await c.stop(2000);
    assertOk(Date.now() - t0 < 5000);
    assertEquals(c.queued, 0);
    assertEquals(c.running, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A stand-in for `bipbip --stdin`: logs "worker <pid>" when it starts, "start <job>" / "end
 * <job>" per input line (after a short sleep), and answers "done <job> 0".
 */
function scriptWorker(log: string, sleep: number) {
  return processWorkerSpawner(() => ({
    program: "sh",
    args: [
      "-c",
      `echo "worker $$" >> "$0"
       while IFS= read -r line; do
         id=$(printf '%s' "$line" | sed 's/^\\["\\([0-9]*\\)".*/\\1/')
         echo "start $id" >> "$0"; sleep ${sleep}; echo "end $id" >> "$0"; echo "done $id 0"
       done`,
      log,
    ],
    env: {},
  }));
}

Deno.test("commander: bipbip invocations go to batch workers; leon still gets a child each", async () => {
  const dir = await Deno.makeTempDir();
  const log = `${dir}/log`;
  try {
    const c = new Commander({
      max: 2,
      childTimeoutMs: 60_000,
      spawn: scriptSpawner(log, 0.05),
      worker: scriptWorker(log, 0.05),
      batchWindowMs: 300,
    });
    c.prestart();
    for (let i = 1; i <= 6; i++) c.enqueue(msg(i));
    c.enqueue(msg(3, "OAREXEC"));
    c.enqueue(msg(9, "LEONEXTERMINATE"));
    await c.idle();
    const text = await Deno.readTextFile(log);
    const lines = text.trim().split("\n");
    // The standby took every bipbip invocation of the burst; a second standby waits.
    assertEquals(lines.filter((l) => l.startsWith("worker")).length, 2);
    const ev = lines.filter((l) => !l.startsWith("worker")).map((l) => l.split(" "));
    const started = ev.filter(([w]) => w === "start").map(([, id]) => Number(id));
    assertEquals(started.sort((a, b) => a - b), [1, 2, 3, 3, 4, 5, 6, 9]);
    // Job 3's second invocation waited for the first one's end.
    const job3 = ev.filter(([, id]) => id === "3").map(([w]) => w);
    assertEquals(job3, ["start", "end", "start", "end"]);
    assertEquals(c.stats.started, 8);
    assertEquals(c.stats.finished, 8);
    assertEquals(c.running, 0);
    await c.stop(2000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commander: a worker that dies frees its jobs; stop() ends the standby", async () => {
  const c = new Commander({
    max: 2,
    childTimeoutMs: 60_000,
    spawn: processSpawner(() => ({ program: "true", args: [], env: {} })),
    worker: processWorkerSpawner(() => ({
      program: "sh",
      args: ["-c", "read x; exit 3"],
      env: {},
    })),
  });
  c.enqueue(msg(1));
  c.enqueue(msg(2));
  await c.idle();
  // Both launches died with their worker: each followed once by a lost-launch invocation
  // (issue 22), whose workers die too.
  assertEquals(c.stats.lostLaunches, 2);
  assertEquals(c.stats.finished, 4);
  const t0 = Date.now();
  await c.stop(2000);
  assertOk(Date.now() - t0 < 5000);
});
