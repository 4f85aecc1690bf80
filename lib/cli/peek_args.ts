/**
 * A light reading of a command line against a command's option table, for a command's user
 * side: which options are given and the positionals, without node:util (loading Deno's Node
 * layer costs a command start-up ~5 ms of CPU). The command server parses the line again with
 * parseArgs and reports every error; this returns null whenever the line does not read cleanly.
 */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

export type PeekedValues = Record<string, string | boolean | string[] | undefined>;

export function peekArgs(
  args: string[],
  options: Readonly<Record<string, OptionSpec>>,
): { values: PeekedValues; positionals: string[] } | null {
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const values: PeekedValues = {};
  const positionals: string[] = [];
  const set = (name: string, v: string | boolean) => {
    if (options[name].multiple) values[name] = [...(values[name] as string[] ?? []), String(v)];
    else values[name] = v;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const o = Object.hasOwn(options, name) ? options[name] : undefined;
      if (!o) return null;
      if (o.type === "boolean") {
        if (eq >= 0) return null;
        set(name, true);
      } else if (eq >= 0) set(name, a.slice(eq + 1));
      else if (i + 1 < args.length) set(name, args[++i]);
      else return null;
    } else if (a.startsWith("-") && a.length > 1) {
      // -I, -IS (booleans together), -lcore=1, -l core=1
      for (let j = 1; j < a.length; j++) {
        const name = byShort.get(a[j]);
        if (!name) return null;
        if (options[name].type === "boolean") {
          set(name, true);
          continue;
        }
        if (j + 1 < a.length) set(name, a.slice(j + 1));
        else if (i + 1 < args.length) set(name, args[++i]);
        else return null;
        break;
      }
    } else positionals.push(a);
  }
  return { values, positionals };
}
