/**
 * A command's option table: one entry per option, from which both the parser's configuration
 * (parserOptions, for node:util parseArgs through ./args.ts) and the `--help` text (helpText) are
 * made, so the two cannot drift. Imports nothing: oarsub's user side reads its table too
 * (lib/cli/peek_args.ts reads type, short and multiple only).
 */

/** One option of a command. */
export interface OptionDef {
  type: "string" | "boolean";
  /** The one-letter form, `-q` for "q". */
  short?: string;
  /** Repeatable: the values are collected in a list. */
  multiple?: boolean;
  /** The argument's name in the help (string options): "QUEUE"; "[USER]" when it may be left out. */
  arg?: string;
  /** What the option does, a line or two (wrapped to the help's width). */
  help: string;
}

/** A command's options by long name, in the order the help lists them. */
export type OptionTable = Readonly<Record<string, OptionDef>>;

/** What parseArgs knows of an option: its type, short form and whether it repeats. */
export interface ParserOption {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** The parseArgs `options` of a table: every option, with only the keys parseArgs knows. */
export function parserOptions(table: OptionTable): Record<string, ParserOption> {
  const options: Record<string, ParserOption> = {};
  for (const [name, o] of Object.entries(table)) {
    const p: ParserOption = { type: o.type };
    if (o.short !== undefined) p.short = o.short;
    if (o.multiple !== undefined) p.multiple = o.multiple;
    options[name] = p;
  }
  return options;
}

/** The help's width. */
export const HELP_WIDTH = 100;

/** The widest option column the descriptions are aligned after; a wider one gets its own line. */
const MAX_OPTION_COLUMN = 32;

/** Words of `text` in lines of at most `width` columns (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** Paragraphs (separated by a blank line) wrapped to the help's width. */
function paragraphs(text: string): string {
  return text.trim().split(/\n\s*\n/).map((p) => wrap(p, HELP_WIDTH).join("\n")).join("\n\n");
}

/** `  -q, --queue QUEUE` or `      --array N`. */
function optionColumn(name: string, o: OptionDef): string {
  const short = o.short !== undefined ? `-${o.short}, ` : "    ";
  const arg = o.type === "string" ? ` ${o.arg ?? "VALUE"}` : "";
  return `  ${short}--${name}${arg}`;
}

/**
 * OAR's help of a command: `Usage: <command> <synopsis>` (one line per synopsis), the summary,
 * then one line per option of the table, in its order, descriptions aligned and wrapped at
 * HELP_WIDTH columns, then the notes, if any.
 */
export function helpText(
  command: string,
  synopsis: string | readonly string[],
  summary: string,
  table: OptionTable,
  notes?: string,
): string {
  const usage = (typeof synopsis === "string" ? [synopsis] : synopsis)
    .map((s, i) => `${i === 0 ? "Usage:" : "      "} ${command} ${s}`);
  const rows = Object.entries(table).map(([name, o]) => [optionColumn(name, o), o.help] as const);
  const widths = rows.map(([left]) => left.length).filter((n) => n <= MAX_OPTION_COLUMN);
  const column = Math.max(0, ...widths) + 2;
  const lines: string[] = [];
  for (const [left, help] of rows) {
    const text = wrap(help, HELP_WIDTH - column).map((t) => " ".repeat(column) + t);
    // An option column wider than the others: its description starts on the next line.
    if (left.length + 2 <= column && text.length > 0) text[0] = left + text[0].slice(left.length);
    else lines.push(left);
    lines.push(...text);
  }
  const parts = [usage.join("\n"), paragraphs(summary), lines.join("\n")];
  if (notes !== undefined) parts.push(paragraphs(notes));
  return parts.join("\n\n");
}
