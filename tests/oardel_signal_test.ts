/**
 * `oardel -s SIGNAL` and `oardel -c` as real commands on a job really running under oarexec
 * (local launcher): the job's processes get the signal; events record it; bad input is refused.
 */
import { join } from "node:path";
import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { createTestDb } from "./support/testdb.ts";
import {
  entryArgs,
  eventTypes,
  execRig,
  launchableJob,
  oarexecPid,
  ReportListener,
} from "./support/exec_fixtures.ts";
import { waitFor } from "./support/proc.ts";
import { bipbip } from "../modules/bipbip/bipbip.ts";
import { LocalLauncher } from "../lib/launch/local.ts";
import { launcherSignaller } from "../lib/launch/oarexec_signal.ts";
import { leon } from "../modules/leon/leon.ts";
import { fragJob } from "../lib/job/frag.ts";
import { startCommandServer } from "./support/command_server.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("oardel -s and -c reach the running job's processes", opts, async () => {
  await using db = await createTestDb();
  const rig = await execRig(db);
  // oardel's privileged half, which signals the job through the launcher.
  await using _commands = await startCommandServer(rig.confPath);
  const listener = new ReportListener(rig.port);
  const ctx = {
    sql: db.sql,
    config: rig.config,
    log: rig.log,
    notifier: rig.notifier,
    launcher: new LocalLauncher(rig.config, rig.log),
    unreachable: () => Promise.resolve([]),
  };
  const oardel = async (args: string[], env: Record<string, string> = {}) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: entryArgs("oardel", rig.config, args),
      env: { OARCONFFILE: rig.confPath, NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
  };
  try {
    const jobId = await launchableJob(db.sql, rig, {
      command: "trap 'echo usr1 >> signals' USR1; trap 'echo usr2 >> signals' USR2; " +
        "while true; do sleep 0.1; done",
    });
    assertEquals(await bipbip(ctx, [String(jobId)]), 0);
    await oarexecPid(rig, jobId);
    const signals = join(rig.work, "signals");
    const received = async () => (await Deno.readTextFile(signals).catch(() => "")).split("\n");

    let r = await oardel(["-s", "USR1", String(jobId)]);
    assertEquals(r.code, 0, r.text);
    await waitFor("USR1 to reach the job", async () => (await received()).includes("usr1"));
    r = await oardel(["-c", String(jobId)]);
    assertEquals(r.code, 0, r.text);
    await waitFor("the checkpoint signal", async () => (await received()).includes("usr2"));
    assertEquals(
      (await eventTypes(db.sql, jobId)).filter((t) => /SIGNAL|CHECKPOINT/.test(t)).sort(),
      ["CHECKPOINT_SUCCESS", "SIGNAL_SUCCESS"],
    );

    // Refusals: a signal that is not a signal name, another user's job, a job not running.
    r = await oardel(["-s", "USR1; reboot", String(jobId)]);
    assertEquals(r.code, 2, r.text);
    assertStringIncludes(r.text, "invalid signal");
    r = await oardel(["-s", "USR1", String(jobId)], { OARDO_USER: "mallory" });
    assertEquals(r.code, 1, r.text);
    r = await oardel(["-c", "999999"]);
    assertEquals(r.code, 7, r.text);

    // Done: kill it the usual way.
    assertEquals(await fragJob(db.sql, jobId, "root"), 0);
    assertEquals(await leon({ ...ctx, signaller: launcherSignaller(ctx.launcher) }, []), 0);
    await listener.line(`OAREXEC_${jobId}_`);
  } finally {
    await listener.close();
  }
});
