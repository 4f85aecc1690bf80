/**
 * The user's command as a real process (lib/exec/user_command.ts): in a session of its own,
 * in its launching directory, its output appended to the job's files; the wrapper's failures
 * told apart from the command's.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./support/assert.ts";
import { lookupAccount } from "../lib/exec/passwd.ts";
import { startUserCommand } from "../lib/exec/user_command.ts";
import { sessionMembers } from "../lib/exec/process_tree.ts";
import { waitFor } from "./support/proc.ts";

async function me() {
  const name = new TextDecoder().decode(
    (await new Deno.Command("id", { args: ["-un"], stdout: "piped" }).output()).stdout,
  ).trim();
  const account = await lookupAccount(name);
  assertOk(account, `no passwd entry for ${name}`);
  return account;
}

function spec(dir: string, command: string, account: Awaited<ReturnType<typeof me>>) {
  return {
    account,
    launchingDirectory: dir,
    stdoutFile: join(dir, "out"),
    stderrFile: join(dir, "err"),
    command,
    env: { PATH: "/usr/bin:/bin" },
  };
}

Deno.test("user command: leads a session of its own, in its directory, output appended", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const account = await me();
    await Deno.writeTextFile(join(dir, "out"), "before\n");
    // Field 6 of /proc/<pid>/stat is the session id; $$ is the user's shell, the process
    // oarexec started (the wrapper execs it).
    const p = startUserCommand(
      spec(dir, 'cut -d" " -f6 /proc/$$/stat; pwd; echo oops >&2; exit 3', account),
    );
    const r = await p.result;
    assertEquals(r.base, 0);
    assertEquals(r.waitStatus, 3 << 8);
    const [before, sid, cwd] = (await Deno.readTextFile(join(dir, "out"))).trim().split("\n");
    assertEquals(before, "before");
    assertEquals(Number(sid), p.pid, "the job's shell is not the leader of its own session");
    assertEquals(cwd, await Deno.realPath(dir));
    assertEquals(await Deno.readTextFile(join(dir, "err")), "oops\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("user command: killTree reaches what it started in the background", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = startUserCommand(spec(dir, "sleep 300 & echo $! > bg; wait", await me()));
    const bg = await waitFor("the background sleep", async () => {
      const t = await Deno.readTextFile(join(dir, "bg")).catch(() => "");
      return t.endsWith("\n") ? Number(t) : undefined;
    });
    assertOk(sessionMembers(p.pid).includes(bg), "the background job left the session");
    p.killTree();
    const r = await p.result;
    assertEquals(r.waitStatus, 9);
    await waitFor("the background sleep to be gone", () => !sessionMembers(p.pid).includes(bg));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("user command: a launching directory it cannot enter is base 10", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = startUserCommand({
      ...spec(dir, "true", await me()),
      launchingDirectory: "/nonexistent/x",
    });
    assertEquals((await p.result).base, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "user command: as root, runs as the job's user (setpriv), in a session of its own",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const nobody = await lookupAccount("nobody");
    assertOk(nobody, "no passwd entry for nobody");
    const dir = await Deno.makeTempDir();
    try {
      await Deno.chmod(dir, 0o777);
      const account = { ...nobody, shell: "/bin/sh" }; // its own is nologin
      const p = startUserCommand(spec(dir, 'id -u; cut -d" " -f6 /proc/$$/stat', account));
      assertEquals((await p.result).base, 0);
      const [uid, sid] = (await Deno.readTextFile(join(dir, "out"))).trim().split("\n");
      assertEquals(Number(uid), nobody.uid);
      assertEquals(Number(sid), p.pid);
      assertEquals((await Deno.stat(join(dir, "out"))).uid, nobody.uid);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
