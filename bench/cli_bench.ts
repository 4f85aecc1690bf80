/**
 * `deno task bench:cli [--runs N] [--loop N]`: the user commands as users run them, installed
 * by `deno task install` and going through the command server, on the quick-start server
 * (4 hosts × 4 cores, a fresh var directory). Prints, for `oarsub -l core=1 true` and
 * `oarstat -j ID`: wall time per command (p50, p90), the CPU of the command's own process
 * (from this process's reaped children), and the command server's CPU per request; then the
 * rate of a shell-style loop of `--loop` submissions; and, for comparison, `deno task oarsub`
 * (the launcher tools/run.ts in front of the same command).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { startQuickStart } from "./quick_start.ts";

const root = new URL("../", import.meta.url).pathname;
const TICKS = 100; // USER_HZ: /proc times are in 1/100 s

/** utime+stime (own) and cutime+cstime (reaped children) of a process, in ms. */
async function cpuOf(pid: number | "self"): Promise<{ own: number; children: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const n = (i: number) => Number(f[i - 3]) * 1000 / TICKS;
  return { own: n(14) + n(15), children: n(16) + n(17) };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Where the commands run, so the jobs' output files land there: set by main. */
let workDir: string | undefined;

async function run(cmd: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    cwd: workDir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

async function serverPid(varDir: string): Promise<number> {
  const out = await run(["pgrep", "-f", "modules/command_server/main.ts"]);
  for (const pid of out.trim().split("\n").map(Number)) {
    const environ = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
    if (environ.includes(varDir)) return pid;
  }
  throw new Error("no command server for this bench's server");
}

/** Runs `cmd` `n` times in a row; wall times, and CPU ms per run of the command and server. */
async function measure(
  cmd: string[],
  n: number,
  server: number,
  env: Record<string, string> = {},
) {
  const walls: number[] = [];
  const before = await cpuOf("self");
  const serverBefore = await cpuOf(server);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await run(cmd, env);
    walls.push(performance.now() - t0);
  }
  const after = await cpuOf("self");
  const serverAfter = await cpuOf(server);
  return {
    p50: percentile(walls, 0.5),
    p90: percentile(walls, 0.9),
    cpu: (after.children - before.children) / n,
    serverCpu: (serverAfter.own - serverBefore.own) / n,
    total: walls.reduce((a, b) => a + b, 0),
  };
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { runs: { type: "string", default: "50" }, loop: { type: "string", default: "1000" } },
  });
  const runs = Number(values.runs);
  const loop = Number(values.loop);
  const qs = await startQuickStart("oar-bench-cli-");
  const varDir = qs.varDir;
  const prefix = join(varDir, "install");
  try {
    await run([Deno.execPath(), "task", "--quiet", "install", "--prefix", prefix], {
      OAR_VAR_DIR: varDir,
    });
    workDir = join(varDir, "work");
    await Deno.mkdir(workDir);
    const server = await serverPid(varDir);
    const oarsub = [join(prefix, "bin/oarsub"), "-l", "core=1", "true"];
    for (let i = 0; i < 5; i++) await run(oarsub); // warm-up: first runs cache compiled code
    const id = /OAR_JOB_ID=(\d+)/.exec(await run(oarsub))![1];
    const show = (name: string, m: Awaited<ReturnType<typeof measure>>) =>
      console.log(
        `${name.padEnd(34)} p50 ${m.p50.toFixed(1)} ms, p90 ${m.p90.toFixed(1)} ms wall; ` +
          `CPU ${m.cpu.toFixed(1)} ms (command) + ${m.serverCpu.toFixed(1)} ms (command server)`,
      );
    show("oarsub -l core=1 true (installed)", await measure(oarsub, runs, server));
    show(
      `oarstat -j ${id} (installed)`,
      await measure([join(prefix, "bin/oarstat"), "-j", id], runs, server),
    );
    // deno task runs in the project's directory: -d keeps the jobs' files out of it.
    const task = [
      Deno.execPath(),
      "task",
      "--quiet",
      "--config",
      `${root}deno.json`,
      "oarsub",
      "-d",
      workDir,
      "-l",
      "core=1",
      "true",
    ];
    const viaTask = await measure(task, Math.min(runs, 20), server, { OAR_VAR_DIR: varDir })
      .catch(() => null);
    if (viaTask) show("deno task oarsub (tools/run.ts)", viaTask);
    const l = await measure(oarsub, loop, server);
    console.log(
      `loop of ${loop} submissions: ${(loop / (l.total / 1000)).toFixed(1)} jobs/s ` +
        `(p50 ${l.p50.toFixed(1)} ms, CPU ${l.cpu.toFixed(1)} + ${
          l.serverCpu.toFixed(1)
        } ms a job)`,
    );
    return 0;
  } finally {
    await qs.stop();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
