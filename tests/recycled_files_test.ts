/**
 * The agent's recycled job files (modules/oarexec/recycled_files.ts): a removed file comes back as
 * the next one written, with only its new content; links and others' files are never reused;
 * the spares are bounded and cleaned up.
 */
import { join } from "node:path";
import { assertEquals, assertOk } from "./support/assert.ts";
import { RecycledFiles, sweepSpares } from "../modules/oarexec/recycled_files.ts";

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

async function withDir(fn: (dir: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "oar-recycled-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("recycled files: a removed file is the next one written, holding only its text", () =>
  withDir((dir) => {
    const files = new RecycledFiles(dir);
    const a = join(dir, "a");
    files.write(a, "a much longer first content\n");
    const ino = Deno.statSync(a).ino;
    files.remove(a);
    assertEquals(names(dir).filter((n) => !n.startsWith(".spare_files.")), []);
    assertEquals(files.spareCount, 1);

    const b = join(dir, "b");
    files.write(b, "short\n");
    assertEquals(Deno.readTextFileSync(b), "short\n");
    assertEquals(Deno.statSync(b).ino, ino);
    assertEquals(Deno.statSync(b).mode! & 0o777, 0o644);
    assertEquals(files.spareCount, 0);

    // Written again with the text it holds (the pid file, for the report): left as it is.
    files.write(join(dir, "spare-to-be"), "s");
    files.remove(join(dir, "spare-to-be"));
    files.write(b, "short\n");
    assertEquals([Deno.readTextFileSync(b), Deno.statSync(b).ino], ["short\n", ino]);
    assertEquals(files.spareCount, 1);
    // With another text: replaced whole (a reader never sees half of each).
    files.write(b, "again\n");
    assertEquals(Deno.readTextFileSync(b), "again\n");
    files.write(join(dir, "spare-to-be"), "s");

    // Removing what is not there is no error, and writes go on without spares.
    files.remove(join(dir, "missing"));
    files.write(join(dir, "c"), "c");
    assertEquals(Deno.readTextFileSync(join(dir, "c")), "c");

    files.remove(b);
    files.clear();
    assertEquals(names(dir), ["c", "spare-to-be"]);
  }));

Deno.test("recycled files: links are removed, never reused", () =>
  withDir((dir) => {
    const files = new RecycledFiles(dir);
    const target = join(dir, "target");
    Deno.writeTextFileSync(target, "precious");
    const link = join(dir, "link");
    Deno.symlinkSync(target, link);
    files.remove(link);
    const hard = join(dir, "hard");
    Deno.linkSync(target, hard);
    files.remove(hard);
    assertEquals(files.spareCount, 0);
    assertEquals(names(dir), ["target"]);
    // Writing afterwards cannot reach the link's target.
    files.write(join(dir, "new"), "x");
    assertEquals(Deno.readTextFileSync(target), "precious");
  }));

Deno.test("recycled files: spares are bounded; beyond that files are removed", () =>
  withDir((dir) => {
    const files = new RecycledFiles(dir, 2);
    for (const n of ["1", "2", "3", "4"]) files.write(join(dir, n), n);
    for (const n of ["1", "2", "3", "4"]) files.remove(join(dir, n));
    assertEquals(files.spareCount, 2);
    const spareDir = names(dir);
    assertEquals(spareDir.length, 1);
    assertEquals(names(join(dir, spareDir[0])).length, 2);
  }));

Deno.test("recycled files: a spare lost meanwhile is replaced by a new file", () =>
  withDir((dir) => {
    const files = new RecycledFiles(dir);
    files.write(join(dir, "a"), "a");
    files.remove(join(dir, "a"));
    // Someone swept the spare directory away (sweepSpares of a confused agent, an admin).
    for (const n of names(dir)) Deno.removeSync(join(dir, n), { recursive: true });
    files.write(join(dir, "b"), "bee");
    assertEquals(Deno.readTextFileSync(join(dir, "b")), "bee");
    files.remove(join(dir, "b"));
    assertEquals(files.spareCount, 1);
  }));

Deno.test("recycled files: the sweep removes only the spares of agents that are gone", () =>
  withDir((dir) => {
    const alive = new RecycledFiles(dir, 4, 111);
    const dead = new RecycledFiles(dir, 4, 222);
    for (const [f, n] of [[alive, "a"], [dead, "d"]] as const) {
      f.write(join(dir, n), n);
      f.remove(join(dir, n));
    }
    Deno.mkdirSync(join(dir, "unrelated"));
    sweepSpares(dir, (pid) => pid === 111);
    assertEquals(names(dir), [".spare_files.111", "unrelated"]);
    assertOk(alive.spareCount === 1);
  }));

Deno.test("recycled files: a file left by others or removed behind its back gets its text", () =>
  withDir((dir) => {
    const files = new RecycledFiles(dir);
    // Left by a previous agent: never written through this one.
    const left = join(dir, "left");
    Deno.writeTextFileSync(left, "an old job's pid, much longer\n");
    files.write(left, "7\n");
    assertEquals(Deno.readTextFileSync(left), "7\n");
    // Written here, then removed by something else: written again, not lost.
    const gone = join(dir, "gone");
    files.write(gone, "1\n");
    Deno.removeSync(gone);
    files.write(gone, "2\n");
    assertEquals(Deno.readTextFileSync(gone), "2\n");
    // Removed here and written again: its own spare, with the new text only.
    files.remove(gone);
    files.write(gone, "3\n");
    assertEquals(Deno.readTextFileSync(gone), "3\n");
  }));
