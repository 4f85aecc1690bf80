/**
 * The session file (its lines, the watch over them on a given process table) and the session
 * script, run for real through sh with a stand-in for the user's shell.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  parsePs,
  parseSessionLines,
  processTree,
  type ProcTable,
  psTable,
  SessionWatch,
} from "../lib/exec/sessions.ts";
import { sessionScript, WORKDIR_EXIT } from "../cli/oarsub/shell.ts";
import { waitFor } from "./support/proc.ts";

Deno.test("parseSessionLines: well-formed lines only", () => {
  assertEquals(
    parseSessionLines(
      "START 10 11\nCONNECT 20 21\nEND 11 3\ngarbage\nSTART 0 1\nSTART 1\nEND 11 1000\n" +
        "START -1 2\nCONNECT 30 31 extra\n  END 21 0  \n",
    ),
    [
      { op: "START", anchor: 10, wrapper: 11 },
      { op: "CONNECT", anchor: 20, wrapper: 21 },
      { op: "END", wrapper: 11, status: 3 },
      { op: "END", wrapper: 21, status: 0 },
    ],
  );
});

Deno.test("parsePs: pid, parent, uid, start; zombies left out", () => {
  const t = parsePs(
    "    1     0     0 Ss   Thu Nov 26 09:55:02 2026\n" +
      "  812     1  1000 S+   Thu Nov 26 10:01:00 2026\n" +
      "  813   812  1000 Z    Thu Nov 26 10:01:01 2026\n",
  );
  assertEquals([...t.keys()], [1, 812]);
  assertEquals(t.get(812), { ppid: 1, uid: 1000, start: "Thu Nov 26 10:01:00 2026" });
});

Deno.test("psTable sees this process, its parent, and a child's tree", async () => {
  const child = new Deno.Command("sh", { args: ["-c", "sleep 30 & wait"], stdout: "null" })
    .spawn();
  try {
    const t0 = psTable();
    assertOk(t0);
    assertEquals(t0.get(Deno.pid)?.uid, Deno.uid());
    let tree: number[] = [];
    for (let i = 0; i < 100 && tree.length < 2; i++) {
      tree = processTree(child.pid, psTable()!);
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(tree[0], child.pid);
    assertEquals(tree.length, 2);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

/** A process table the test sets at will. */
function fakeTable(): {
  table: ProcTable;
  set: (pid: number, uid?: number, start?: string) => void;
} {
  const table: ProcTable = new Map();
  return {
    table,
    set: (pid, uid = 1000, start = "s") => table.set(pid, { ppid: 1, uid, start }),
  };
}

Deno.test("SessionWatch: waiting, active, ended with the shell's status", () => {
  const { table, set } = fakeTable();
  const w = new SessionWatch(1000, () => new Map(table));
  let file = "";
  assertEquals(w.poll(() => file), { state: "waiting" });
  set(10);
  set(11);
  file = "START 10 11\n";
  assertEquals(w.poll(() => file), { state: "active" });
  // A -C session does not end the job.
  set(21);
  file += "CONNECT 10 21\nEND 21 0\n";
  assertEquals(w.poll(() => file), { state: "active" });
  file += "END 11 7\n";
  table.delete(11);
  assertEquals(w.poll(() => file), { state: "ended", status: 7 });
});

Deno.test("SessionWatch: END written between the two reads counts as ended", () => {
  const { table, set } = fakeTable();
  set(10);
  set(11);
  const w = new SessionWatch(1000, () => new Map(table));
  assertEquals(w.poll(() => "START 10 11\n"), { state: "active" });
  // The table (read after the first read) no longer has the shell; the second read has END.
  let reads = 0;
  table.delete(11);
  const read = () => (reads++ === 0 ? "START 10 11\n" : "START 10 11\nEND 11 0\n");
  assertEquals(w.poll(read), { state: "ended", status: 0 });
});

Deno.test("SessionWatch: oarsub gone, shell killed, reused pid, someone else's pid", () => {
  {
    const { table, set } = fakeTable();
    set(10);
    set(11);
    const w = new SessionWatch(1000, () => new Map(table));
    assertEquals(w.poll(() => "START 10 11\n").state, "active");
    table.delete(10);
    assertEquals(w.poll(() => "START 10 11\n"), {
      state: "lost",
      reason: "the interactive oarsub is gone",
    });
  }
  {
    const { table, set } = fakeTable();
    set(10);
    set(11);
    const w = new SessionWatch(1000, () => new Map(table));
    w.poll(() => "START 10 11\n");
    table.delete(11);
    assertEquals(w.poll(() => "START 10 11\n").state, "lost");
  }
  {
    // The anchor's pid now names another process (another start time).
    const { table, set } = fakeTable();
    set(10);
    set(11);
    const w = new SessionWatch(1000, () => new Map(table));
    w.poll(() => "START 10 11\n");
    set(10, 1000, "later");
    assertEquals(w.poll(() => "START 10 11\n").state, "lost");
  }
  {
    // A START naming root's processes is never taken for a live session of the user.
    const { table, set } = fakeTable();
    set(1, 0);
    set(2, 0);
    const w = new SessionWatch(1000, () => new Map(table));
    assertEquals(w.poll(() => "START 1 2\n").state, "lost");
    assertEquals(w.liveWrappers(), []);
  }
  {
    // No process table at all (no ps): only what the shells wrote counts.
    const w = new SessionWatch(1000, () => null);
    assertEquals(w.poll(() => ""), { state: "waiting" });
    assertEquals(w.poll(() => "START 10 11\n"), { state: "active" });
    assertEquals(w.poll(() => "START 10 11\nEND 11 2\n"), { state: "ended", status: 2 });
  }
});

Deno.test("sessionScript: exports, records START/END, runs the shell in the workdir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oar-session-" });
  try {
    const file = `${dir}/oarsub_connections_7`;
    await Deno.writeTextFile(file, "");
    const shell = `${dir}/fake-shell`;
    await Deno.writeTextFile(
      shell,
      '#!/bin/sh\necho "id=$OAR_JOB_ID name=$OAR_JOB_NAME pwd=$(pwd)"\nexit 5\n',
    );
    await Deno.chmod(shell, 0o755);
    const work = `${dir}/it's here`;
    await Deno.mkdir(work);
    const run = async (env: Record<string, string>, kind: "START" | "CONNECT") => {
      const out = await new Deno.Command("sh", {
        args: ["-c", sessionScript({ env, sessionFile: file, kind })],
        env: { SHELL: shell },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
    };
    const name = `a 'quoted' $(touch ${dir}/pwned) name`;
    const r = await run({ OAR_JOB_ID: "7", OAR_JOB_NAME: name, OAR_WORKDIR: work }, "START");
    assertEquals(r.code, 5, r.stderr);
    assertEquals(r.stdout, `id=7 name=${name} pwd=${work}\n`);
    const lines = parseSessionLines(await Deno.readTextFile(file));
    assertEquals(lines.map((l) => l.op), ["START", "END"]);
    assertEquals(lines[1], {
      op: "END",
      wrapper: (lines[0] as { wrapper: number }).wrapper,
      status: 5,
    });
    assertOk(!(await Deno.stat(`${dir}/pwned`).then(() => true, () => false)), "injected");
    // A working directory that is gone: exit 2, no shell.
    const gone = await run({ OAR_JOB_ID: "7", OAR_WORKDIR: `${dir}/nope` }, "CONNECT");
    assertEquals(gone.code, WORKDIR_EXIT);
    assertStringIncludes(gone.stderr, "cannot enter working directory");
    assertEquals(gone.stdout, "");
    // -C into a job without a session file records nothing and still works.
    await Deno.remove(file);
    const c = await run({ OAR_JOB_ID: "7", OAR_WORKDIR: work }, "CONNECT");
    assertEquals(c.code, 5);
    assertOk(!(await Deno.stat(file).then(() => true, () => false)));
    // The parent (oarsub, the ssh session) gone before the shell ends, even as a zombie not
    // yet reaped: no END, so the session counts as lost.
    await Deno.writeTextFile(file, "");
    await Deno.writeTextFile(shell, "#!/bin/sh\nsleep 1\nexit 0\n");
    const script = sessionScript({ env: { OAR_WORKDIR: work }, sessionFile: file, kind: "START" });
    const anchor = new Deno.Command("sh", {
      args: ["-c", 'sh -c "$1" </dev/null >/dev/null 2>&1 & wait', "sh", script],
      env: { SHELL: shell },
    }).spawn();
    const wrapper = await waitFor("the session", async () => {
      const l = parseSessionLines(await Deno.readTextFile(file));
      return l[0]?.op === "START" ? l[0].wrapper : undefined;
    }, 10_000);
    anchor.kill("SIGKILL");
    await waitFor("the wrapper to end", () => (psTable()?.has(wrapper) ? undefined : true), 10_000);
    await anchor.status;
    assertEquals(parseSessionLines(await Deno.readTextFile(file)).map((l) => l.op), ["START"]);
    await Deno.writeTextFile(
      shell,
      '#!/bin/sh\necho "id=$OAR_JOB_ID name=$OAR_JOB_NAME pwd=$(pwd)"\nexit 5\n',
    );
    await Deno.remove(file);
    // -I cannot run without its session file: its oarexec would never know it began.
    const s = await run({ OAR_JOB_ID: "7", OAR_WORKDIR: `${dir}/no/such` }, "START");
    assertEquals(s.code, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
