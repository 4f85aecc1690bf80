/**
 * bench:e2e's CPU breakdown (bench/cpu_breakdown.ts): /proc parsing, roles, and the sums over
 * processes that lived through, started during, or ended during the measured phase.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import {
  cpuByRole,
  formatBreakdown,
  parseStat,
  type ProcSample,
  roleOf,
  snapshot,
} from "../bench/cpu_breakdown.ts";

/** A /proc/<pid>/stat line: utime stime cutime cstime and starttime in ticks. */
function statLine(pid: number, comm: string, ppid: number, t: number[], start: number) {
  const [ut, st, cut, cst] = t;
  return `${pid} (${comm}) S ${ppid} 1 1 0 -1 4194560 100 0 0 0 ${ut} ${st} ${cut} ${cst} ` +
    `20 0 1 0 ${start} 1000000 100 18446744073709551615`;
}

Deno.test("cpu breakdown: /proc/<pid>/stat parsed, a command name with spaces and ) too", () => {
  assertEquals(parseStat(statLine(42, "a b) c", 7, [3, 2, 10, 5], 999)), {
    pid: 42,
    ppid: 7,
    comm: "a b) c",
    start: 999,
    self: 50,
    children: 150,
  });
  assertEquals(parseStat("garbage"), null);
});

Deno.test("cpu breakdown: roles from the entry file, PostgreSQL, the bench", () => {
  const p = (pid: number, comm: string, cmdline: string) => ({ pid, comm, cmdline });
  assertEquals(
    roleOf(p(5, "deno", "/usr/bin/deno run -A /srv/oar/modules/meta_sched/main.ts"), 1),
    "meta_sched",
  );
  assertEquals(
    roleOf(p(5, "deno", "deno run --allow-all /srv/oar/modules/oarexec/main.ts --serve"), 1),
    "oarexec agent",
  );
  assertEquals(roleOf(p(5, "deno", "deno run /opt/dist/bipbip.js 7"), 1), "bipbip");
  // An artifact (OARDIR): its flags may name other artifacts.
  assertEquals(
    roleOf(p(5, "deno", "deno run --allow-run=/o/dist/leon,/o/dist/sarko /o/dist/almighty"), 1),
    "almighty",
  );
  assertEquals(roleOf(p(6, "postgres", "postgres: oar oar 127.0.0.1 idle"), 1), "PostgreSQL");
  assertEquals(
    roleOf(p(1, "deno", "deno run bench/e2e_bench.ts"), 1),
    "bench (submission, polling)",
  );
  assertEquals(roleOf(p(8, "bash", "bash -c true"), 1), "bash");
});

Deno.test("cpu breakdown: deltas of the living, reaped children, reused pids, the rest", () => {
  const proc = (
    pid: number,
    cmdline: string,
    start: number,
    self: number,
    children: number,
  ): [number, ProcSample] => [pid, {
    pid,
    ppid: 1,
    comm: "deno",
    cmdline,
    start,
    self,
    children,
  }];
  const before = new Map([
    proc(10, "deno run modules/almighty/main.ts", 100, 50, 1000),
    proc(20, "deno run modules/oarexec/main.ts --serve", 200, 300, 400),
    proc(30, "deno run modules/leon/main.ts", 300, 70, 0), // ends during the phase
    proc(40, "deno run modules/sarko/main.ts", 400, 90, 0), // its pid is reused
  ]);
  const after = new Map([
    proc(10, "deno run modules/almighty/main.ts", 100, 80, 6000),
    proc(20, "deno run modules/oarexec/main.ts --serve", 200, 900, 3400),
    proc(40, "deno run modules/finaud/main.ts", 900, 40, 0),
    proc(50, "deno run modules/meta_sched/main.ts", 950, 120, 0), // a standby started meanwhile
  ]);
  const byRole = cpuByRole(before, after, 1, 10_000);
  assertEquals(Object.fromEntries(byRole), {
    "almighty": 30,
    "almighty's modules (meta_sched, node_change_state, ...)": 5000,
    "oarexec agent": 600,
    "the jobs (user shells, under the oarexec agent)": 3000,
    "finaud": 40,
    "meta_sched": 120,
    "unaccounted (kernel threads, interrupts, orphans)": 10_000 - 8790,
  });
  assertEquals(formatBreakdown(byRole, 1000).slice(0, 2), [
    "      5.00 ms/job  almighty's modules (meta_sched, node_change_state, ...)",
    "      3.00 ms/job  the jobs (user shells, under the oarexec agent)",
  ]);
});

Deno.test({
  name: "cpu breakdown: a child's CPU shows once it is reaped",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const before = snapshot();
    const me = before.get(Deno.pid);
    assertOk(me, "this process is not in the snapshot");
    assertOk(me.cmdline.includes("deno"), me.cmdline);
    // ~100 ms of CPU in a child, counted as this process's children once it is waited for.
    await new Deno.Command("sh", {
      args: ["-c", "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"],
    }).output();
    const byRole = cpuByRole(before, snapshot(), Deno.pid);
    const kids = byRole.get("bench (submission, polling)'s children") ?? 0;
    assertOk(kids >= 20, `children CPU ${kids} ms`);
  },
});
