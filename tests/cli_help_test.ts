/**
 * Every command's help is made from its option table (lib/cli/options.ts): it names every option
 * of the table, and parseArgs gets exactly the table's options. Pure, but for the last test,
 * which runs `oarsub --help` and `oarstat --help` through the command server.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { parse } from "../lib/cli/args.ts";
import { HELP_WIDTH, helpText, type OptionTable, parserOptions } from "../lib/cli/options.ts";
import { OPTIONS as OARSUB_OPTIONS } from "../lib/cli/oarsub_options.ts";
import { OARSUB_HELP } from "../lib/cli/oarsub.ts";
import { OARSTAT_HELP, OARSTAT_OPTIONS } from "../lib/cli/oarstat.ts";
import { OARDEL_HELP, OARDEL_OPTIONS } from "../lib/cli/oardel.ts";
import {
  OARHOLD_HELP,
  OARHOLD_OPTIONS,
  OARRESUME_HELP,
  OARRESUME_OPTIONS,
} from "../lib/cli/hold_resume.ts";
import { OARNODES_HELP, OARNODES_OPTIONS } from "../lib/cli/oarnodes.ts";
import { OARNODESETTING_HELP, OARNODESETTING_OPTIONS } from "../lib/cli/oarnodesetting.ts";
import { OARPROPERTY_HELP, OARPROPERTY_OPTIONS } from "../lib/cli/oarproperty.ts";
import { OARNOTIFY_HELP, OARNOTIFY_OPTIONS } from "../lib/cli/oarnotify.ts";
import { OAR_DATABASE_HELP, OAR_DATABASE_OPTIONS } from "../cli/oar-database/main.ts";
import { CliEnv } from "./cli_harness_test.ts";

const COMMANDS: [string, OptionTable, string][] = [
  ["oarsub", OARSUB_OPTIONS, OARSUB_HELP],
  ["oarstat", OARSTAT_OPTIONS, OARSTAT_HELP],
  ["oardel", OARDEL_OPTIONS, OARDEL_HELP],
  ["oarhold", OARHOLD_OPTIONS, OARHOLD_HELP],
  ["oarresume", OARRESUME_OPTIONS, OARRESUME_HELP],
  ["oarnodes", OARNODES_OPTIONS, OARNODES_HELP],
  ["oarnodesetting", OARNODESETTING_OPTIONS, OARNODESETTING_HELP],
  ["oarproperty", OARPROPERTY_OPTIONS, OARPROPERTY_HELP],
  ["oarnotify", OARNOTIFY_OPTIONS, OARNOTIFY_HELP],
  ["oar-database", OAR_DATABASE_OPTIONS, OAR_DATABASE_HELP],
];

/** The option lines of a help, `-q, --queue QUEUE`-style, without their descriptions. */
function optionLines(help: string): string[] {
  return help.split("\n").filter((l) => /^ {2}(-\w, | {4})--/.test(l)).map((l) =>
    l.trim().split(/ {2,}/)[0]
  );
}

Deno.test("each command's help names every option of its table, once, in its order", () => {
  for (const [cmd, table, help] of COMMANDS) {
    assertOk(help.startsWith(`Usage: ${cmd} `), `${cmd}: ${help.split("\n")[0]}`);
    const want = Object.entries(table).map(([name, o]) =>
      `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.arg}` : ""}`
    );
    assertEquals(optionLines(help), want, cmd);
    for (const [name, o] of Object.entries(table)) {
      assertStringIncludes(help, `--${name}`, cmd);
      if (o.short) assertStringIncludes(help, `-${o.short}, --${name}`, cmd);
      if (o.type === "string") assertOk(o.arg, `${cmd} --${name} names its argument`);
      assertOk(o.help.trim() !== "", `${cmd} --${name} is described`);
    }
    for (const line of help.split("\n")) {
      assertOk(line.length <= HELP_WIDTH, `${cmd}: a line over ${HELP_WIDTH}: ${line}`);
    }
  }
});

Deno.test("each command's parser gets exactly its table's options, with parseArgs' keys only", () => {
  for (const [cmd, table] of COMMANDS) {
    const options = parserOptions(table);
    assertEquals(Object.keys(options), Object.keys(table), cmd);
    for (const [name, o] of Object.entries(table)) {
      const want: Record<string, unknown> = { type: o.type };
      if (o.short !== undefined) want.short = o.short;
      if (o.multiple !== undefined) want.multiple = o.multiple;
      assertEquals(options[name], want, `${cmd} --${name}`);
    }
    // The parser knows each option by its long and its short name, and nothing else.
    for (const [name, o] of Object.entries(table)) {
      const forms = [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
      for (const form of forms) {
        const args = o.type === "string" ? [form, "x"] : [form];
        const v = parse(args, table).values as Record<string, unknown>;
        assertEquals(v[name], o.type === "string" ? (o.multiple ? ["x"] : "x") : true, form);
      }
    }
    let refused = false;
    try {
      parse(["--no-such-option"], table);
    } catch {
      refused = true;
    }
    assertOk(refused, `${cmd} refuses an unknown option`);
  }
});

Deno.test("oarsub's help says what the job-key options and --resubmit do here", () => {
  const line = (opt: string) => OARSUB_HELP.slice(OARSUB_HELP.indexOf(opt)).split("\n")[1];
  for (const opt of ["--import-job-key-from-file", "--export-job-key-to-file"]) {
    assertStringIncludes(line(opt), "not supported", opt);
  }
  assertStringIncludes(OARSUB_HELP, "-k, --use-job-key");
  assertStringIncludes(OARSUB_HELP, "every job gets its own key");
  assertStringIncludes(OARSUB_HELP, "--resubmit JOBID");
});

Deno.test("helpText: usage, summary, aligned and wrapped options, notes", () => {
  const table = {
    queue: { type: "string", short: "q", arg: "QUEUE", help: "the queue" },
    "a-rather-long-option-name": { type: "string", arg: "SOMETHING", help: "on its own line" },
    wait: { type: "boolean", help: "word ".repeat(30).trim() },
  } as const satisfies OptionTable;
  const text = helpText("cmd", ["[OPTIONS]", "--other"], "Does things.", table, "A note.");
  const pad = " ".repeat(21);
  assertEquals(
    text,
    [
      "Usage: cmd [OPTIONS]",
      "       cmd --other",
      "",
      "Does things.",
      "",
      "  -q, --queue QUEUE  the queue",
      "      --a-rather-long-option-name SOMETHING",
      `${pad}on its own line`,
      `      --wait         ${"word ".repeat(16).trim()}`,
      `${pad}${"word ".repeat(14).trim()}`,
      "",
      "A note.",
    ].join("\n"),
  );
});

Deno.test("oarsub --help and oarstat --help print their generated help through the command server", async () => {
  await using env = await CliEnv.create();
  for (const [cmd, help] of [["oarsub", OARSUB_HELP], ["oarstat", OARSTAT_HELP]] as const) {
    const r = await env.run(cmd, ["--help"]);
    assertEquals(r.code, 0, `${cmd} --help: ${r.stderr}`);
    assertEquals(r.stdout, `${help}\n`, cmd);
    assertEquals(r.stderr, "", cmd);
    const short = await env.run(cmd, ["-h"]);
    assertEquals(short.code, 0, `${cmd} -h: ${short.stderr}`);
    assertEquals(short.stdout, `${help}\n`, `${cmd} -h`);
  }
});
