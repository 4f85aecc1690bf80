/**
 * Argument parsing shared by the commands: node:util parseArgs in strict mode over a command's
 * option table (./options.ts, which also makes its help), with its errors turned into OAR's usage
 * refusal (exit 2, as click does), and typed integer options.
 */
import { parseArgs } from "node:util";
import { CliError } from "./frame.ts";
import { type OptionTable, parserOptions } from "./options.ts";

/** Parses `args` against a command's option table (parseArgs sees only its parser keys). */
export function parse<T extends OptionTable>(
  args: string[],
  table: T,
  allowPositionals = true,
) {
  try {
    // The values' types come from the table's literal types; the parser gets its own keys only.
    const options = parserOptions(table) as unknown as T;
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional.*$/s, "");
    throw new CliError(msg, 2, true);
  }
}

/** An integer option value, or undefined when absent; refuses anything else. */
export function intOption(
  name: string,
  v: string | boolean | (string | boolean)[] | undefined,
  opts: { min?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const s = String(Array.isArray(v) ? v.at(-1) : v).trim();
  if (!/^-?\d+$/.test(s)) {
    throw new CliError(`option ${name} needs an integer, not "${s}"`, 2, true);
  }
  const n = Number(s);
  if (opts.min !== undefined && n < opts.min) {
    throw new CliError(`option ${name} must be at least ${opts.min}`, 2, true);
  }
  return n;
}

/** A repeatable string option as a list. */
export function list(v: string | boolean | (string | boolean)[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}
