/**
 * The oarexec liveness check (lib/launch/held_jobs.ts) with real pid files and processes: run
 * by `sh` here (local launcher) and through an OPENSSH_CMD standing in for ssh (it runs the
 * remote command line locally, as the node's login shell would).
 */
import { assertEquals } from "./support/assert.ts";
import { Config } from "../lib/runtime/config.ts";
import { heldJobsScript, localHeldJobs, parseHeldJobs } from "../lib/launch/held_jobs.ts";
import { LocalLauncher } from "../lib/launch/local.ts";
import { SshLauncher } from "../lib/launch/ssh.ts";

/** A directory with a space (quoting), a live process and the pid of a dead one. */
async function rig() {
  const root = await Deno.makeTempDir({ prefix: "oar-held-" });
  const dir = `${root}/oarexec dir`;
  await Deno.mkdir(dir);
  const live = new Deno.Command("sleep", { args: ["60"] }).spawn();
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const pidFile = (id: number, text: string) =>
    Deno.writeTextFile(`${dir}/pid_of_oarexec_for_jobId_${id}`, text);
  await pidFile(1, `${live.pid}\n`);
  await pidFile(2, String(dead.pid));
  // 3: no pid file at all.
  await pidFile(4, "$(touch /tmp/oar-held-pwned); 1");
  await pidFile(5, "");
  const config = new Config({ OAREXEC_DIRECTORY: dir, TIMEOUT_SSH: 5 });
  return {
    root,
    config,
    async [Symbol.asyncDispose]() {
      live.kill("SIGKILL");
      await live.status;
      await Deno.remove(root, { recursive: true });
    },
  };
}

const EXPECTED = new Map([[1, true], [2, false], [3, false], [4, false], [5, false]]);

Deno.test("held jobs: a live process in the pid file is alive; a dead pid, no file or junk is gone", async () => {
  await using r = await rig();
  assertEquals(await localHeldJobs(r.config, [1, 2, 3, 4, 5]), EXPECTED);
  assertEquals(
    await new LocalLauncher(r.config).heldJobs("localhost", [1, 3]),
    new Map([
      [1, true],
      [3, false],
    ]),
  );
  assertEquals(await localHeldJobs(r.config, []), new Map());
  // The junk in file 4 was read as data, never run.
  assertEquals(await Deno.stat("/tmp/oar-held-pwned").then(() => true, () => false), false);
});

Deno.test("held jobs: an answer without its END line, or for other jobs, is no answer", () => {
  assertEquals(parseHeldJobs("1 alive\n2 gone\n", [1, 2]), null);
  assertEquals(parseHeldJobs("", [1]), null);
  assertEquals(
    parseHeldJobs("1 alive\n7 gone\nnoise\n2 gone\nEND\n", [1, 2]),
    new Map([[1, true], [2, false]]),
  );
  // Ids are integers only; anything else is left out of the script.
  const script = heldJobsScript(new Config({}), [3, -1, 1.5, 4]);
  assertEquals(/for j in 3 4; do/.test(script), true, script);
});

Deno.test("held jobs: the ssh launcher asks a host once for all its jobs; a failed ssh is no answer", async () => {
  await using r = await rig();
  const calls = `${r.root}/calls`;
  const fakeSsh = `${r.root}/fake-ssh`;
  // Logs its arguments, then runs the remote command line (the last argument) with sh.
  await Deno.writeTextFile(
    fakeSsh,
    `#!/bin/sh\necho "$@" >> '${calls}'\nfor last; do :; done\nexec sh -c "$last"\n`,
  );
  await Deno.chmod(fakeSsh, 0o755);
  const ssh = new SshLauncher(r.config.with({ OPENSSH_CMD: `${fakeSsh} -p 6667` }));
  assertEquals(await ssh.heldJobs("node-1", [1, 2, 3, 4, 5]), EXPECTED);
  const lines = (await Deno.readTextFile(calls)).trim().split("\n");
  assertEquals(lines.length, 1);
  assertEquals(
    lines[0].startsWith("-p 6667 -x -T -oBatchMode=yes -oConnectTimeout=5 node-1 sh -c"),
    true,
    lines[0],
  );
  // An unreachable node (ssh exits 255) or an invalid host name: nothing is concluded.
  const downSsh = `${r.root}/down-ssh`;
  await Deno.writeTextFile(
    downSsh,
    "#!/bin/sh\necho 'ssh: connect: No route to host' >&2\nexit 255\n",
  );
  await Deno.chmod(downSsh, 0o755);
  const down = new SshLauncher(r.config.with({ OPENSSH_CMD: downSsh }));
  assertEquals(await down.heldJobs("node-1", [1]), null);
  assertEquals(await ssh.heldJobs("-oProxyCommand=x", [1]), null);
});
