/**
 * The whole server as an admin runs it: `deno task start` on the embedded default (its own
 * PostgreSQL under a fresh var directory), then the real commands, as a user would type them.
 * A job submitted with oarsub runs on the local cluster and ends Terminated with its output;
 * Ctrl-C stops everything and leaves no process behind.
 */
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { freePort } from "./support/ports.ts";
import { waitFor } from "./support/proc.ts";

const root = new URL("../", import.meta.url).pathname;

/** A port base with base..base+6 free (proxy, almighty, commander, greta). */
async function freePortBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = await freePort();
    if (base > 65529) continue;
    const ok = [0, 4, 5, 6].every((d) => {
      try {
        Deno.listen({ hostname: "127.0.0.1", port: base + d }).close();
        return true;
      } catch {
        return false;
      }
    });
    if (ok) return base;
  }
  throw new Error("no free port range");
}

async function task(varDir: string, args: string[], cwd = root) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", ...args],
    cwd,
    env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Processes whose command line mentions the var dir (postgres, almighty and its children). */
async function leftovers(varDir: string): Promise<string[]> {
  const out = await new Deno.Command("pgrep", { args: ["-af", varDir], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
}

Deno.test({
  name: "deno task start: oarsub then oarstat on the embedded default; Ctrl-C leaves nothing",
  fn: async () => {
    const varDir = await Deno.makeTempDir({ prefix: "oar-e2e-var-" });
    const work = await Deno.makeTempDir({ prefix: "oar-e2e-work-" });
    const base = await freePortBase();
    const start = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}tools/start.ts`,
        "--hosts",
        "2",
        "--cores",
        "2",
        "--port-base",
        String(base),
      ],
      cwd: root,
      env: { OAR_VAR_DIR: varDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let log = "";
    const decoder = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) log += decoder.decode(c, { stream: true });
    };
    const drained = Promise.all([drain(start.stdout), drain(start.stderr)]);
    try {
      await waitFor("the server to listen", () => log.includes(`listening on port ${base}`), 60_000)
        .catch((e) => {
          throw new Error(`${e.message}\n${log}`);
        });
      const sub = await task(varDir, ["oarsub", "-d", work, "-l", "core=1", "echo hello"]);
      assertEquals(sub.code, 0, sub.stderr);
      const id = Number(/OAR_JOB_ID=(\d+)/.exec(sub.stdout)?.[1]);
      assertEquals(Number.isInteger(id) && id > 0, true, sub.stdout);
      const state = await waitFor("the job to end", async () => {
        const st = await task(varDir, ["oarstat", "-s", "-j", String(id)]);
        const m = /: (\w+)/.exec(st.stdout);
        return m && ["Terminated", "Error"].includes(m[1]) ? m[1] : undefined;
      }, 60_000).catch((e) => {
        throw new Error(`${e.message}\n${log}`);
      });
      assertEquals(state, "Terminated", log);
      const out = await Deno.readTextFile(`${work}/OAR.${id}.stdout`);
      assertEquals(out, "hello\n");
      // Finished jobs leave the default table, as in OAR; -j still shows them.
      const table = await task(varDir, ["oarstat", "-j", String(id)]);
      assertStringIncludes(table.stdout, `${id} `);
      assertStringIncludes(table.stdout, " T ");
    } finally {
      start.kill("SIGINT");
      const status = await start.status;
      await drained;
      assertEquals(status.code, 0, log);
      await waitFor("no process left", async () => (await leftovers(varDir)).length === 0, 20_000)
        .catch(async (e) => {
          throw new Error(`${e.message}: ${(await leftovers(varDir)).join("\n")}`);
        });
      await Deno.remove(varDir, { recursive: true });
      await Deno.remove(work, { recursive: true });
    }
  },
});
