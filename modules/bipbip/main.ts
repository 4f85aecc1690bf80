/**
 * bipbip: launches a job, or handles oarexec's report at its end (docs/modules.md §4). Run as
 * `bipbip <job_id> [<oarexec_exit> <script_exit> <challenge>]`, or by bipbip_commander as
 * `bipbip --stdin`: one such invocation per input line (a JSON list of its arguments), a
 * `done <job_id> <code>` line back for each, so that one process serves a batch of jobs.
 */
import { bipbip } from "./bipbip.ts";
import { bipbipLines } from "./batch.ts";
import { makeLauncher } from "../../lib/launch/launcher.ts";
import { runOneShot } from "../../lib/runtime/oneshot.ts";
import { pingchecker } from "../../lib/resource/pingchecker.ts";
import { MAX_MESSAGE_BYTES, readLines } from "../../lib/protocol/mod.ts";

export async function main(args: string[]): Promise<number> {
  return await runOneShot("bipbip", async (ctx) => {
    const launcher = makeLauncher(ctx.config, ctx.log);
    // The node check: the configured pingchecker method, else the built-in one (docs/differences.md
    // §2).
    const unreachable = async (hosts: string[]) =>
      (await pingchecker(hosts, ctx.config, { log: ctx.log })).bad;
    const bctx = { ...ctx, launcher, unreachable };
    if (args.length === 1 && args[0] === "--stdin") {
      // Connect while the commander has nothing for us yet: the first job does not wait for it.
      ctx.sql`SELECT 1`.catch(() => {});
      const out = new TextEncoder();
      let writing = Promise.resolve();
      const code = await bipbipLines(
        bctx,
        readLines(Deno.stdin.readable, MAX_MESSAGE_BYTES),
        (id, c) => {
          const line = out.encode(`done ${id} ${c}\n`);
          writing = writing.then(async () => {
            let n = 0;
            while (n < line.length) n += await Deno.stdout.write(line.subarray(n));
          }).catch(() => {});
          return writing;
        },
      );
      await writing;
      return code;
    }
    return await bipbip(bctx, args);
  }, { poolSize: args[0] === "--stdin" ? 6 : 2 });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
