/**
 * oarnodes: resources and their states, by host and by resource; -s states only, -l host
 * list, -e events of hosts (since a date), -J JSON; selection by host names, -r ids or --sql.
 */
import { out as print } from "./scope.ts";
import type { Queryable } from "../db/client.ts";
import { resourceColumns } from "../properties/columns.ts";
import { type Param, parseExpression, toParameterised } from "../properties/expr.ts";
import { parseReservationDate } from "../submission/checks.ts";
import { intOption, list, parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { CliError, runCli } from "./frame.ts";
import { localToSql } from "./oarstat.ts";

export const OARNODES_OPTIONS = {
  resource: {
    type: "string",
    short: "r",
    multiple: true,
    arg: "ID",
    help: "show only this resource (repeatable)",
  },
  sql: {
    type: "string",
    arg: "FILTER",
    help: "show only the resources matching a filter on the resources table",
  },
  state: { type: "boolean", short: "s", help: "show only the states (per host, per resource)" },
  list: { type: "boolean", short: "l", help: "list the host names" },
  events: {
    type: "string",
    short: "e",
    arg: "[DATE]",
    help: 'show the events of the hosts (since "YYYY-MM-DD hh:mm:ss")',
  },
  json: { type: "boolean", short: "J", help: "print the result in JSON" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARNODES_HELP = helpText(
  "oarnodes",
  "[OPTIONS] [HOSTNAME]...",
  "Show resources and their states.",
  OARNODES_OPTIONS,
);

const NO_DATE = "\u0000no-date";

/** `-e` takes an optional date; mark the bare form for parseArgs. */
function markBareEvents(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    out.push(args[i]);
    const bare = i + 1 === args.length || args[i + 1].startsWith("-") ||
      !/^\d{4}-\d{1,2}-\d{1,2}/.test(args[i + 1]);
    if ((args[i] === "-e" || args[i] === "--events") && bare) out.push(NO_DATE);
  }
  return out;
}

type Row = Record<string, unknown> & {
  resource_id: number;
  network_address: string;
  state: string;
};

async function selectResources(
  sql: Queryable,
  hosts: string[],
  ids: number[],
  filter: string | undefined,
): Promise<Row[]> {
  const params: Param[] = [];
  const conds: string[] = [];
  if (hosts.length) {
    params.push(hosts as unknown as Param);
    conds.push(`network_address = ANY($${params.length}::text[])`);
  }
  if (ids.length) {
    params.push(ids as unknown as Param);
    conds.push(`resource_id = ANY($${params.length}::int[])`);
  }
  if (filter !== undefined) {
    const expr = parseExpression(filter, await resourceColumns(sql));
    conds.push(`(${toParameterised(expr, params)})`);
  }
  const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
  const rows = await sql.unsafe(`SELECT * FROM resources ${where} ORDER BY resource_id`, params);
  return (rows as unknown as Row[]).map((r) => ({ ...r, resource_id: Number(r.resource_id) }));
}

/** Jobs currently on each resource. */
async function jobsOn(sql: Queryable, ids: number[]): Promise<Map<number, number[]>> {
  const rows = await sql<{ resource_id: number; jobs: number[] }[]>`
    SELECT a.resource_id, array_agg(j.job_id ORDER BY j.job_id) AS jobs
    FROM assigned_resources a JOIN jobs j ON j.assigned_moldable_job = a.moldable_job_id
    WHERE a.resource_id = ANY(${ids}::int[]) AND a.assigned_resource_index = 'CURRENT'
      AND j.state IN ('toLaunch', 'Launching', 'Running', 'Suspended', 'Resuming', 'Finishing')
    GROUP BY a.resource_id`;
  return new Map(rows.map((r) => [Number(r.resource_id), [...r.jobs].map(Number)]));
}

const HIDDEN = new Set(["resource_id", "network_address", "state"]);

function properties(r: Row): string {
  return Object.entries(r)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${v ?? ""}`)
    .join(", ");
}

export async function oarnodesMain(args: string[]): Promise<number> {
  return await runCli("oarnodes", OARNODES_HELP, async (ctx) => {
    const { values, positionals } = parse(markBareEvents(args), OARNODES_OPTIONS);
    if (values.help) {
      print(OARNODES_HELP);
      return 0;
    }
    if (values.version) {
      print("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    const ids = list(values.resource).map((s) => intOption("-r", s, { min: 1 })!);
    const rows = await selectResources(ctx.sql, positionals, ids, values.sql);
    if (values.events !== undefined) {
      return await printEvents(
        ctx,
        positionals.length ? positionals : [...new Set(rows.map((r) => r.network_address))],
        values.events,
        values.json ?? false,
      );
    }
    if (values.list) {
      const hosts = [...new Set(rows.map((r) => r.network_address))];
      if (values.json) print(JSON.stringify(hosts));
      else for (const h of hosts) print(h);
      return 0;
    }
    if (values.state) {
      const byHost = new Map<string, Row[]>();
      for (const r of rows) {
        byHost.set(r.network_address, [...byHost.get(r.network_address) ?? [], r]);
      }
      if (values.json) {
        const out: Record<string, Record<string, string>> = {};
        for (const [h, rs] of byHost) {
          out[h] = Object.fromEntries(rs.map((r) => [String(r.resource_id), r.state]));
        }
        print(JSON.stringify(out));
      } else {
        for (const [h, rs] of byHost) {
          print(h);
          for (const r of rs) print(`    ${r.resource_id}: ${r.state}`);
        }
      }
      return 0;
    }
    const jobs = await jobsOn(ctx.sql, rows.map((r) => r.resource_id));
    if (values.json) {
      const out: Record<string, unknown> = {};
      for (const r of rows) {
        out[String(r.resource_id)] = { ...r, jobs: jobs.get(r.resource_id) ?? [] };
      }
      print(JSON.stringify(out, null, 4));
      return 0;
    }
    for (const r of rows) {
      print(`network_address: ${r.network_address}`);
      print(`resource_id: ${r.resource_id}`);
      print(`state: ${r.state}`);
      const j = jobs.get(r.resource_id);
      if (j?.length) print(`jobs: ${j.join(", ")}`);
      print(`properties: ${properties(r)}`);
      print("");
    }
    return 0;
  });
}

async function printEvents(
  ctx: { sql: Queryable },
  hosts: string[],
  date: string,
  json: boolean,
): Promise<number> {
  let since = 0;
  if (date !== NO_DATE) {
    try {
      since = parseReservationDate(date);
    } catch {
      throw new CliError(`bad date "${date}": expected "YYYY-MM-DD hh:mm:ss"`, 2, true);
    }
  }
  const rows = await ctx.sql<
    { hostname: string; date: number; type: string; job_id: number; description: string }[]
  >`
    SELECT h.hostname, e.date, e.type, e.job_id, e.description
    FROM event_logs e JOIN event_log_hostnames h ON h.event_id = e.event_id
    WHERE h.hostname = ANY(${hosts}::text[]) AND e.date >= ${since}
    ORDER BY h.hostname, e.event_id`;
  if (json) {
    const out: Record<string, unknown[]> = {};
    for (const r of rows) {
      (out[r.hostname] ??= []).push({
        date: localToSql(r.date),
        type: r.type,
        job_id: r.job_id,
        description: r.description,
      });
    }
    print(JSON.stringify(out));
    return 0;
  }
  for (const r of rows) {
    print(`${r.hostname} ${localToSql(r.date)} [${r.job_id}] ${r.type}: ${r.description}`);
  }
  return 0;
}
