/**
 * Multi-user, end to end, with real OS users: the quick-start server (root), the commands
 * installed by `deno task install`, and alice and mallory running them from their own homes.
 * Users hold no database credentials: every command goes through the command server, which
 * knows each caller from the kernel. Needs root (useradd, runuser); ignored otherwise.
 */
import {
  assertEquals,
  assertMatch,
  assertOk as assert,
  assertStringIncludes,
} from "./support/assert.ts";
import { TestServer } from "./support/server.ts";
import { waitFor } from "./support/proc.ts";
import { connect } from "../lib/db/client.ts";
import { readConfigFile } from "../lib/runtime/config.ts";

const root = new URL("../", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;
const canAddUsers = isRoot && await has("useradd") && await has("runuser");

async function has(program: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", {
      args: ["-c", `command -v ${program}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

async function sh(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const r = await child.output();
  const d = new TextDecoder();
  return { code: r.code, stdout: d.decode(r.stdout), stderr: d.decode(r.stderr) };
}

/** A real account with a private (0700) home. */
async function ensureUser(name: string): Promise<string> {
  if ((await sh(["id", name])).code !== 0) {
    const r = await sh(["useradd", "--create-home", "--shell", "/bin/sh", name]);
    if (r.code !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
  }
  const home = (await sh(["getent", "passwd", name])).stdout.split(":")[5];
  await Deno.chmod(home, 0o700);
  // What an earlier run left (job ids start at 1 again with each new server).
  for await (const e of Deno.readDir(home)) {
    if (/^(OAR\.\d+\.std(out|err)|usr1_\d+|job\.sh)$/.test(e.name)) {
      await Deno.remove(`${home}/${e.name}`);
    }
  }
  return home;
}

/** Runs `cmd` as `user` from the user's home, with a clean environment. */
function asUser(user: string, home: string, env: Record<string, string> = {}) {
  return (cmd: string[], input?: string) => {
    const vars = Object.entries({ HOME: home, PATH: "/usr/local/bin:/usr/bin:/bin", ...env })
      .map(([k, v]) => `${k}=${v}`);
    return sh([
      "runuser",
      "-u",
      user,
      "--",
      "env",
      "-i",
      ...vars,
      "sh",
      "-c",
      'cd "$HOME" && exec "$@"',
      "sh",
      ...cmd,
    ], input);
  };
}

function jobId(stdout: string): number {
  const m = /OAR_JOB_ID=(\d+)/.exec(stdout);
  if (!m) throw new Error(`no job id in: ${stdout}`);
  return Number(m[1]);
}

Deno.test({
  name: "multi-user: alice uses her jobs through the installed commands; mallory cannot",
  ignore: !canAddUsers,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const aliceHome = await ensureUser("oartest_alice");
  const malloryHome = await ensureUser("oartest_mallory");
  await using server = await TestServer.create();
  // The secure default: root's jobs are refused.
  await server.start({ hosts: 2, cores: 2, allowSystemUsers: [] });
  const prefix = await Deno.makeTempDir({ prefix: "oar-install-" });
  await Deno.chmod(prefix, 0o755);
  try {
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "install", "--prefix", prefix],
      cwd: root,
      ...server.env(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(install.code, 0, new TextDecoder().decode(install.stderr));
    const bin = (name: string) => `${prefix}/bin/${name}`;
    const alice = asUser("oartest_alice", aliceHome);
    const mallory = asUser("oartest_mallory", malloryHome);
    const db = connect(readConfigFile(server.confPath), { max: 1 });
    const state = async (id: number) =>
      (await db<{ state: string }[]>`SELECT state FROM jobs WHERE job_id = ${id}`)[0]?.state;
    const ended = (id: number) =>
      waitFor(`job ${id} to end`, async () => {
        const s = await state(id);
        return s === "Terminated" || s === "Error" ? s : undefined;
      }, 60_000);
    const running = (id: number) =>
      waitFor(`job ${id} to run`, async () => (await state(id)) === "Running", 60_000);
    try {
      await t.step("alice's batch job runs as alice, from her directory", async () => {
        const r = await alice([bin("oarsub"), "-l", "core=1", "id -un; pwd"]);
        assertEquals(r.code, 0, r.stderr);
        const id = jobId(r.stdout);
        assertEquals(await ended(id), "Terminated");
        const out = await Deno.readTextFile(`${aliceHome}/OAR.${id}.stdout`);
        assertEquals(out, `oartest_alice\n${aliceHome}\n`);
        assertEquals(
          (await Deno.stat(`${aliceHome}/OAR.${id}.stdout`)).uid,
          Number(
            (await sh(["id", "-u", "oartest_alice"])).stdout.trim(),
          ),
        );
      });

      await t.step("-S reads alice's script in her private home; arrays", async () => {
        await Deno.writeTextFile(`${aliceHome}/job.sh`, "#!/bin/sh\n#OAR -n scanned\necho ok\n");
        await sh(["chown", "oartest_alice:", `${aliceHome}/job.sh`]);
        await Deno.chmod(`${aliceHome}/job.sh`, 0o700);
        let r = await alice([bin("oarsub"), "-S", "./job.sh"]);
        assertEquals(r.code, 0, r.stderr);
        const id = jobId(r.stdout);
        const [{ job_name }] = await db<{ job_name: string }[]>`
          SELECT job_name FROM jobs WHERE job_id = ${id}`;
        assertEquals(job_name, "scanned");
        assertEquals(await ended(id), "Terminated");
        r = await alice([bin("oarsub"), "--array", "2", "true"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stdout.match(/OAR_JOB_ID=/g)?.length, 2);
        // mallory's -S cannot read alice's script: the server never reads files for a user.
        r = await mallory([bin("oarsub"), "-S", `${aliceHome}/job.sh`]);
        assert(r.code !== 0, r.stdout);
        assertStringIncludes(r.stderr, "Unable to read");
      });

      await t.step("alice's interactive job and her shell in a running job are hers", async () => {
        let r = await alice(
          [bin("oarsub"), "-I"],
          'echo "I am $(id -un) in $OAR_JOB_ID"; exit 3\n',
        );
        assertEquals(r.code, 3, r.stderr);
        assertMatch(r.stdout, /I am oartest_alice in \d+/);
        r = await alice([bin("oarsub"), "sleep 60"]);
        const id = jobId(r.stdout);
        await running(id);
        r = await alice([bin("oarsub"), "-C", String(id)], 'echo "inside $OAR_JOB_ID"; exit 0\n');
        assertEquals(r.code, 0, r.stderr);
        assertStringIncludes(r.stdout, `inside ${id}`);
        r = await mallory([bin("oarsub"), "-C", String(id)], "id\n");
        assertEquals(r.code, 20, r.stderr);
        r = await alice([bin("oardel"), String(id)]);
        assertEquals(r.code, 0, r.stderr);
      });

      await t.step("alice holds, resumes, signals and deletes; mallory cannot", async () => {
        // The job writes a file (as alice, in her home) when it gets USR1.
        let r = await alice([
          bin("oarsub"),
          "--hold",
          'trap "echo got > usr1_$OAR_JOB_ID" USR1; while :; do sleep 1; done',
        ]);
        const held = jobId(r.stdout);
        assertEquals(await state(held), "Hold");
        r = await mallory([bin("oarresume"), String(held)]);
        assert(r.code !== 0);
        assertEquals(await state(held), "Hold");
        r = await alice([bin("oarresume"), String(held)]);
        assertEquals(r.code, 0, r.stderr);
        await running(held);
        for (const cmd of [["oardel"], ["oarhold", "-r"], ["oardel", "-s", "USR1"]]) {
          r = await mallory([bin(cmd[0]), ...cmd.slice(1), String(held)]);
          assert(r.code !== 0, `${cmd.join(" ")} as mallory: ${r.stdout}`);
          assertStringIncludes(r.stderr.toLowerCase(), "not the right user");
        }
        // OARDO_USER is honoured for root and oar only.
        r = await asUser("oartest_mallory", malloryHome, { OARDO_USER: "oartest_alice" })(
          [bin("oardel"), String(held)],
        );
        assert(r.code !== 0);
        assertStringIncludes(r.stderr, "only root or oar may act as another user");
        // A shell in alice's job is hers alone.
        r = await mallory([bin("oarsub"), "-C", String(held)]);
        assertEquals(r.code, 20, r.stderr);
        assertStringIncludes(r.stderr, "User mismatch");
        assertEquals(await state(held), "Running");
        // The owner's own signal goes through the same server.
        r = await alice([bin("oardel"), "-s", "USR1", String(held)]);
        assertEquals(r.code, 0, r.stderr);
        await waitFor("the job's USR1 trap", async () => {
          try {
            return (await Deno.readTextFile(`${aliceHome}/usr1_${held}`)) === "got\n";
          } catch {
            return false;
          }
        }, 30_000);
        r = await alice([bin("oardel"), String(held)]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(await ended(held), "Error");
      });

      await t.step("mallory holds no key: not oar.conf, not the database", async () => {
        let r = await mallory(["cat", server.confPath]);
        assert(r.code !== 0, "oar.conf readable by mallory");
        const conf = readConfigFile(server.confPath);
        r = await mallory([
          "psql",
          "-h",
          conf.str("DB_HOSTNAME"),
          "-p",
          String(conf.int("DB_PORT")),
          "-U",
          conf.str("DB_BASE_LOGIN"),
          "-d",
          conf.str("DB_BASE_NAME"),
          "-c",
          "UPDATE jobs SET job_user = 'root'",
        ]);
        assert(r.code !== 0, `mallory reached the database: ${r.stdout}`);
        // What the commands show never includes a job's secrets.
        r = await mallory([bin("oarstat"), "-f", "-J"]);
        assertEquals(r.code, 0, r.stderr);
        assert(!/challenge|PRIVATE KEY/i.test(r.stdout), "a secret in oarstat's output");
      });

      await t.step("root's and system accounts' jobs are refused, at submission", async () => {
        let r = await server.task(["oarsub", "true"]);
        assert(r.code !== 0);
        assertStringIncludes(r.stderr, "JOB_SYSTEM_USERS_ALLOWED");
        r = await sh([bin("oarsub"), "true"]);
        assert(r.code !== 0);
        r = await asUser("oartest_mallory", malloryHome, { OARDO_USER: "root" })(
          [bin("oarsub"), "true"],
        );
        assert(r.code !== 0);
        assertStringIncludes(r.stderr, "only root or oar may act as another user");
        r = await sh(["runuser", "-u", "daemon", "--", bin("oarsub"), "true"]);
        assert(r.code !== 0, r.stdout);
        assertMatch(r.stderr, /system account daemon|cannot reach/);
      });

      await t.step("oarexec refuses root even when the database says root", async () => {
        const r = await alice([bin("oarsub"), "--hold", "id -un"]);
        const id = jobId(r.stdout);
        // The attack of a user holding database credentials, done here by the test.
        await db`UPDATE jobs SET job_user = 'root' WHERE job_id = ${id}`;
        const res = await sh([bin("oarresume"), String(id)]);
        assertEquals(res.code, 0, res.stderr);
        assertEquals(await ended(id), "Error");
        const ev = await db<{ type: string }[]>`
          SELECT type FROM event_logs WHERE job_id = ${id} AND type = 'USER_NOT_ALLOWED'`;
        assertEquals(ev.length, 1);
        // No node was suspected for it.
        const [{ n }] = await db<{ n: number }[]>`
          SELECT count(*)::int AS n FROM resources WHERE state <> 'Alive'`;
        assertEquals(n, 0);
      });
    } finally {
      await db.end();
    }
  } finally {
    await Deno.remove(prefix, { recursive: true });
  }
});
