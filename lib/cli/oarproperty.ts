/**
 * oarproperty: manage the property columns of `resources` (admin only): -a NAME [-c] adds an
 * integer (or with -c a varchar) column, -d NAME drops one, -l lists them, --rename OLD,NEW.
 * Names are plain lower-case SQL identifiers; OAR's own columns cannot be dropped or renamed.
 */
import { out } from "./scope.ts";
import { BUILTIN_RESOURCE_COLUMNS, resourceColumns } from "../properties/columns.ts";
import { requireAdmin } from "./admin.ts";
import { list, parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { CliError, runCli } from "./frame.ts";

export const OARPROPERTY_OPTIONS = {
  add: {
    type: "string",
    short: "a",
    multiple: true,
    arg: "NAME",
    help: "add a property (an integer column; with -c a character varying)",
  },
  varchar: { type: "boolean", short: "c", help: "the properties added are character varying" },
  delete: { type: "string", short: "d", multiple: true, arg: "NAME", help: "delete a property" },
  list: { type: "boolean", short: "l", help: "list the properties" },
  rename: { type: "string", multiple: true, arg: "OLD,NEW", help: "rename a property" },
  quiet: { type: "boolean", short: "q", help: "quiet mode (no extra output)" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARPROPERTY_HELP = helpText(
  "oarproperty",
  "[OPTIONS]",
  "Manage the properties of resources (root/oar only for changes).",
  OARPROPERTY_OPTIONS,
);

const NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

function checkName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new CliError(
      `bad property name "${name}": lower-case letters, digits and _ (not first), at most 63`,
      1,
    );
  }
  return name;
}

export async function oarpropertyMain(args: string[]): Promise<number> {
  return await runCli("oarproperty", OARPROPERTY_HELP, async (ctx) => {
    const { values: v } = parse(args, OARPROPERTY_OPTIONS, false);
    if (v.help) {
      out(OARPROPERTY_HELP);
      return 0;
    }
    if (v.version) {
      out("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    const adds = list(v.add).map(checkName);
    const dels = list(v.delete).map(checkName);
    const renames = list(v.rename).map((r) => {
      const m = /^([^,]+),([^,]+)$/.exec(r);
      if (!m) throw new CliError(`bad --rename "${r}": expected OLD,NEW`, 2, true);
      return [checkName(m[1].trim()), checkName(m[2].trim())] as const;
    });
    if (!adds.length && !dels.length && !renames.length && !v.list) {
      throw new CliError("nothing to do", 2, true);
    }
    const sql = ctx.sql;
    if (adds.length || dels.length || renames.length) await requireAdmin("oarproperty");
    let columns = await resourceColumns(sql);
    for (const name of adds) {
      if (columns.has(name)) throw new CliError(`Property ${name} already exists`, 1);
      // Names are validated identifiers; sql() quotes them all the same.
      if (v.varchar) await sql`ALTER TABLE resources ADD COLUMN ${sql(name)} varchar(255)`;
      else await sql`ALTER TABLE resources ADD COLUMN ${sql(name)} integer`;
      if (!v.quiet) out(`Added property: ${name}`);
    }
    for (const name of dels) {
      if (BUILTIN_RESOURCE_COLUMNS.has(name)) {
        throw new CliError(`Property ${name} is an OAR property and cannot be deleted`, 1);
      }
      if (!columns.has(name)) throw new CliError(`Property ${name} does not exist`, 1);
      await sql`ALTER TABLE resources DROP COLUMN ${sql(name)}`;
      if (!v.quiet) out(`Deleted property: ${name}`);
    }
    for (const [from, to] of renames) {
      if (BUILTIN_RESOURCE_COLUMNS.has(from)) {
        throw new CliError(`Property ${from} is an OAR property and cannot be renamed`, 1);
      }
      if (!columns.has(from)) throw new CliError(`Property ${from} does not exist`, 1);
      if (columns.has(to)) throw new CliError(`Property ${to} already exists`, 1);
      await sql.begin(async (tx) => {
        await tx`ALTER TABLE resources RENAME COLUMN ${sql(from)} TO ${sql(to)}`;
        // Keep what the scheduler's hierarchy and job requests name in step.
        await tx`UPDATE job_resource_descriptions SET res_job_resource_type = ${to}
          WHERE res_job_resource_type = ${from} AND res_job_index = 'CURRENT'`;
      });
      if (!v.quiet) out(`Rename property ${from} into ${to}`);
    }
    if (v.list) {
      columns = await resourceColumns(sql);
      for (const name of columns.keys()) {
        if (!BUILTIN_RESOURCE_COLUMNS.has(name)) out(name);
      }
    }
    return 0;
  });
}
