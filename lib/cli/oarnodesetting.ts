/**
 * oarnodesetting: change resources (admin only). -a adds a resource; -s asks for a state
 * (Alive, Absent, Dead: written to next_state, applied by NodeChangeState); -p sets
 * properties; -m on|off maintenance (on: Absent and available_upto=0; off: Alive and the
 * previous available_upto, docs/differences.md #109); --drain on|off. Resources are chosen by -h
 * host, -r id or --sql. Almighty gets ChState after a state request.
 */
import { errOut, out } from "./scope.ts";
import type { Queryable } from "../db/client.ts";
import { inTransaction } from "../job/events.ts";
import { resourceColumns, SYSTEM_PROPERTIES } from "../properties/columns.ts";
import type { ColumnSet } from "../properties/expr.ts";
import { type Param, parseExpression, toParameterised } from "../properties/expr.ts";
import { addResource, type NextState } from "../resource/resources.ts";
import { requireAdmin } from "./admin.ts";
import { intOption, list, parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { CliError, runCli } from "./frame.ts";

export const OARNODESETTING_OPTIONS = {
  add: {
    type: "boolean",
    short: "a",
    help: "add a new resource (with -h HOST and -p properties)",
  },
  hostname: {
    type: "string",
    short: "h",
    multiple: true,
    arg: "HOST",
    help: "the resources of this host (repeatable)",
  },
  resource: {
    type: "string",
    short: "r",
    multiple: true,
    arg: "ID",
    help: "this resource (repeatable)",
  },
  sql: {
    type: "string",
    arg: "FILTER",
    help: "the resources matching a filter on the resources table",
  },
  state: {
    type: "string",
    short: "s",
    arg: "STATE",
    help: "ask for the state Alive, Absent or Dead",
  },
  property: {
    type: "string",
    short: "p",
    multiple: true,
    arg: "NAME=VALUE",
    help: "set a property (repeatable)",
  },
  maintenance: {
    type: "string",
    short: "m",
    arg: "on|off",
    help: "maintenance mode (on: Absent, not schedulable; off: Alive)",
  },
  drain: { type: "string", short: "d", arg: "on|off", help: "drain mode (no new job)" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", help: "show this help" },
} as const satisfies OptionTable;

export const OARNODESETTING_HELP = helpText(
  "oarnodesetting",
  "[OPTIONS]",
  "Change the state and properties of resources (root/oar only).",
  OARNODESETTING_OPTIONS,
);

const STATES: Record<string, NextState> = { alive: "Alive", absent: "Absent", dead: "Dead" };

/** `-p name=value` checked against the columns: no system property, a number for numbers. */
export function parseAssignments(
  assignments: string[],
  columns: ColumnSet,
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const a of assignments) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/s.exec(a);
    if (!m) throw new CliError(`bad property "${a}": expected NAME=VALUE`, 2, true);
    const name = m[1].toLowerCase();
    const kind = columns.get(name);
    if (kind === undefined) throw new CliError(`unknown property "${m[1]}"`, 1);
    if (SYSTEM_PROPERTIES.has(name) || name === "network_address") {
      throw new CliError(`property "${name}" is managed by OAR and cannot be set`, 1);
    }
    let value: string | number = m[2].trim().replace(/^'(.*)'$/s, "$1");
    if (kind === "number") {
      if (!/^-?\d+(\.\d+)?$/.test(value)) {
        throw new CliError(`property "${name}" is a number, "${value}" is not`, 1);
      }
      value = Number(value);
    }
    out[name] = value;
  }
  return out;
}

function onOff(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (s === "on") return true;
  if (s === "off") return false;
  throw new CliError(`${name} takes on or off, not "${v}"`, 2, true);
}

async function selectIds(
  sql: Queryable,
  hosts: string[],
  ids: number[],
  filter: string | undefined,
  columns: ColumnSet,
): Promise<number[]> {
  const params: Param[] = [];
  const ors: string[] = [];
  if (hosts.length) {
    params.push(hosts as unknown as Param);
    ors.push(`network_address = ANY($${params.length}::text[])`);
  }
  if (ids.length) {
    params.push(ids as unknown as Param);
    ors.push(`resource_id = ANY($${params.length}::int[])`);
  }
  if (filter !== undefined) {
    ors.push(`(${toParameterised(parseExpression(filter, columns), params)})`);
  }
  const rows = await sql.unsafe(
    `SELECT resource_id FROM resources WHERE ${ors.join(" OR ")} ORDER BY resource_id`,
    params,
  );
  return rows.map((r) => Number(r.resource_id));
}

export async function oarnodesettingMain(args: string[]): Promise<number> {
  return await runCli("oarnodesetting", OARNODESETTING_HELP, async (ctx) => {
    const { values: v } = parse(args, OARNODESETTING_OPTIONS, false);
    if (v.help) {
      out(OARNODESETTING_HELP);
      return 0;
    }
    if (v.version) {
      out("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    const hosts = list(v.hostname);
    const rids = list(v.resource).map((s) => intOption("-r", s, { min: 1 })!);
    const state = v.state === undefined ? undefined : STATES[v.state.trim().toLowerCase()];
    if (v.state !== undefined && !state) {
      throw new CliError(`bad state "${v.state}": expected Alive, Absent or Dead`, 2, true);
    }
    const maintenance = v.maintenance === undefined ? undefined : onOff("-m", v.maintenance);
    const drain = v.drain === undefined ? undefined : onOff("--drain", v.drain);
    const props = list(v.property);
    if (!v.add && !state && maintenance === undefined && drain === undefined && !props.length) {
      throw new CliError("nothing to do: give -a, -s, -p, -m or --drain", 2, true);
    }
    await requireAdmin("oarnodesetting");
    const sql = ctx.sql;
    const columns = await resourceColumns(sql);
    const assignments = parseAssignments(props, columns);
    let ids: number[];
    if (v.add) {
      if (hosts.length !== 1) throw new CliError("-a needs exactly one -h HOST", 2, true);
      if (!/^[A-Za-z0-9._-]+$/.test(hosts[0])) {
        throw new CliError(`invalid host name "${hosts[0]}"`, 1);
      }
      const { type, ...rest } = assignments;
      const id = await addResource(sql, {
        network_address: hosts[0],
        type: type === undefined ? undefined : String(type),
        properties: rest,
      });
      out(`New resource added: ${id}`);
      ids = [id];
    } else {
      if (!hosts.length && !rids.length && v.sql === undefined) {
        throw new CliError("which resources? give -h HOST, -r ID or --sql", 2, true);
      }
      ids = await selectIds(sql, hosts, rids, v.sql, columns);
      if (!ids.length) {
        errOut("#WARNING: no resource matches");
        return 1;
      }
      if (Object.keys(assignments).length) {
        await sql`UPDATE resources SET ${sql(assignments)} WHERE resource_id = ANY(${ids}::int[])`;
        for (const id of ids) {
          for (const [k, val] of Object.entries(assignments)) {
            out(`Set property ${k} to '${val}' for resource ${id}`);
          }
        }
      }
    }
    let next: NextState | undefined = state;
    await inTransaction(sql, async (tx) => {
      if (drain !== undefined) {
        await tx`UPDATE resources SET drain = ${drain ? "YES" : "NO"}
          WHERE resource_id = ANY(${ids}::int[])`;
      }
      if (maintenance === true) {
        next = "Absent";
        await tx`UPDATE resources SET last_available_upto = available_upto, available_upto = 0
          WHERE resource_id = ANY(${ids}::int[]) AND available_upto <> 0`;
      } else if (maintenance === false) {
        next = "Alive";
        await tx`UPDATE resources SET available_upto = CASE WHEN last_available_upto > 0
            THEN last_available_upto ELSE 2147483647 END
          WHERE resource_id = ANY(${ids}::int[]) AND available_upto = 0`;
      }
      if (next) {
        await tx`UPDATE resources SET next_state = ${next}, next_finaud_decision = 'NO'
          WHERE resource_id = ANY(${ids}::int[])`;
      }
    });
    if (next && !v.add) {
      for (const id of ids) out(`${id} --> ${next}`);
    }
    if (next) ctx.notifier().almighty("ChState");
    return 0;
  });
}
