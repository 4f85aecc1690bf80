/**
 * Argument parsing shared by the commands: node:util parseArgs in strict mode, with its errors
 * turned into OAR's usage refusal (exit 2, as click does), and typed integer options.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError } from "./frame.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<T extends Options>(
  args: string[],
  options: T,
  allowPositionals = true,
) {
  try {
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
