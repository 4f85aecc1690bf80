/**
 * `deno task bench:flood [--jobs N] [--flood-seconds S]`: what a hostile peer's flood of the
 * appendice proxy costs honest jobs. On the quick-start server (4 hosts × 4 cores, a fresh var
 * directory, loopback only), N trivial jobs are run one after the other, idle, then again while
 * this process floods SERVER_PORT: connections that only send blank lines, and connections that
 * send forged end reports (`OAREXEC_<id>_0_0_<guess>`) for the jobs being run. Prints the jobs'
 * submit→final-state p50 and p90 in both phases, and their ratio (target: within 2x). The flood
 * is bounded in connections, lines and time, and stops by itself.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { startQuickStart } from "./quick_start.ts";
import { connect } from "../lib/db/client.ts";
import { readConfigFile } from "../lib/runtime/config.ts";

const root = new URL("../", import.meta.url).pathname;
const BLANK_CONNECTIONS = 200;
const FORGER_CONNECTIONS = 8;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function submit(varDir: string, work: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", `${root}deno.json`, "oarsub", "-d", work, "true"],
    env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const id = Number(/OAR_JOB_ID=(\d+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  if (!Number.isInteger(id)) throw new Error(new TextDecoder().decode(out.stderr));
  return id;
}

/** Runs `n` jobs one after the other; each one's submit→final-state time, in ms. */
async function runJobs(
  varDir: string,
  work: string,
  sql: ReturnType<typeof connect>,
  n: number,
  onJob: (id: number) => void = () => {},
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const id = await submit(varDir, work);
    onJob(id);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [row] = await sql<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${id}`;
      if (row?.state === "Terminated" || row?.state === "Error") break;
      if (Date.now() > deadline) throw new Error(`job ${id} did not end`);
      await new Promise((r) => setTimeout(r, 10));
    }
    times.push(performance.now() - t0);
  }
  return times;
}

/** The hostile peer: until `stop`, blank-line connections and forged reports for `target()`. */
function flood(port: number, target: () => number, stop: AbortSignal): Promise<number> {
  let lines = 0;
  const enc = new TextEncoder();
  const blank = async () => {
    while (!stop.aborted) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          while (!stop.aborted) {
            await c.write(enc.encode("\n"));
            lines++;
            await new Promise((r) => setTimeout(r, 500));
          }
        } finally {
          c.close();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const forger = async () => {
    while (!stop.aborted) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          while (!stop.aborted) {
            const batch = Array.from(
              { length: 100 },
              () => `OAREXEC_${target()}_0_0_${Math.floor(Math.random() * 1e12)}\n`,
            ).join("");
            await c.write(enc.encode(batch));
            lines += 100;
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          c.close();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  return Promise.all([
    ...Array.from({ length: BLANK_CONNECTIONS }, blank),
    ...Array.from({ length: FORGER_CONNECTIONS }, forger),
  ]).then(() => lines);
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      jobs: { type: "string", default: "30" },
      "flood-seconds": { type: "string", default: "120" },
    },
  });
  const n = Number(values.jobs);
  const qs = await startQuickStart("oar-bench-flood-");
  const { varDir, portBase: base } = qs;
  const work = join(varDir, "work");
  await Deno.mkdir(work);
  const stop = new AbortController();
  const cap = setTimeout(() => stop.abort(), Number(values["flood-seconds"]) * 1000);
  try {
    const sql = connect(readConfigFile(join(varDir, "oar.conf")), { max: 1 });
    try {
      await runJobs(varDir, work, sql, 3); // warm-up
      const idle = await runJobs(varDir, work, sql, n);
      let current = 1;
      const flooding = flood(base, () => current, stop.signal);
      const loaded = await runJobs(varDir, work, sql, n, (id) => (current = id));
      stop.abort();
      const lines = await flooding;
      const show = (name: string, t: number[]) =>
        console.log(
          `${name.padEnd(26)} p50 ${percentile(t, 0.5).toFixed(0)} ms, ` +
            `p90 ${percentile(t, 0.9).toFixed(0)} ms (${t.length} jobs, submit to final state)`,
        );
      show("idle", idle);
      show("under the flood", loaded);
      console.log(
        `flood: ${BLANK_CONNECTIONS} blank-line connections, ${FORGER_CONNECTIONS} forgers, ` +
          `${lines} lines written; p50 ratio ${
            (percentile(loaded, 0.5) / percentile(idle, 0.5)).toFixed(2)
          } (target <= 2)`,
      );
    } finally {
      await sql.end();
    }
    return 0;
  } finally {
    clearTimeout(cap);
    stop.abort();
    await qs.stop();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
