import { assertEquals } from "./support/assert.ts";
import { parseArgs } from "node:util";
import { peekArgs } from "../lib/cli/peek_args.ts";
import { OPTIONS } from "../lib/cli/oarsub_options.ts";

Deno.test("peekArgs reads oarsub's lines as parseArgs does, or gives up", () => {
  const lines = [
    ["-l", "core=1", "echo hi"],
    ["-lcore=1", "-I"],
    ["-IS", "./job.sh"],
    ["--array-param-file=params", "./prog"],
    ["--array-param-file", "params", "-t", "a", "-t", "b", "./prog"],
    ["-C", "12"],
    ["--wait", "-r", "2030-01-01 10:00:00", "x"],
    ["--", "-not-an-option"],
  ];
  for (const args of lines) {
    const want = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    const got = peekArgs(args, OPTIONS)!;
    assertEquals(got.positionals, want.positionals, args.join(" "));
    assertEquals({ ...got.values }, { ...want.values }, args.join(" "));
  }
  for (const bad of [["--bogus"], ["-l"], ["--wait=yes"], ["-Z"], ["--queue"]]) {
    assertEquals(peekArgs(bad, OPTIONS), null, bad.join(" "));
  }
});
