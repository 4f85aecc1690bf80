/**
 * oarnotify: queue management (admin only) and raw commands to almighty: -E/-D activate or
 * deactivate all queues, -e/-d one queue, --add-queue name,priority,policy, --remove-queue,
 * -l list; a positional argument is sent to almighty as a command (Qsub, Term, Scheduling...).
 */
import { out } from "./scope.ts";
import { isAlmightyCommand } from "../protocol/mod.ts";
import { requireAdmin } from "./admin.ts";
import { parse } from "./args.ts";
import { helpText, type OptionTable } from "./options.ts";
import { CliError, runCli } from "./frame.ts";

export const OARNOTIFY_OPTIONS = {
  "enable-all-queues": { type: "boolean", short: "E", help: "activate every queue" },
  "disable-all-queues": { type: "boolean", short: "D", help: "deactivate every queue" },
  "enable-queue": { type: "string", short: "e", arg: "NAME", help: "activate a queue" },
  "disable-queue": { type: "string", short: "d", arg: "NAME", help: "deactivate a queue" },
  "add-queue": { type: "string", arg: "NAME,PRIORITY,POLICY", help: "create a queue" },
  "remove-queue": { type: "string", arg: "NAME", help: "remove a queue" },
  "list-queues": { type: "boolean", short: "l", help: "list the queues" },
  version: { type: "boolean", short: "V", help: "print OAR version" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

export const OARNOTIFY_HELP = helpText(
  "oarnotify",
  "[OPTIONS] [COMMAND]",
  "Manage queues and send a command to the OAR server (root/oar only). COMMAND (Qsub, Term, " +
    "Scheduling...) is sent to almighty as is; a change of the queues sends Term.",
  OARNOTIFY_OPTIONS,
);

const QUEUE_RE = /^[A-Za-z0-9_.-]{1,100}$/;

function queueName(s: string): string {
  if (!QUEUE_RE.test(s)) throw new CliError(`bad queue name "${s}"`, 2, true);
  return s;
}

export async function oarnotifyMain(args: string[]): Promise<number> {
  return await runCli("oarnotify", OARNOTIFY_HELP, async (ctx) => {
    const { values: v, positionals } = parse(args, OARNOTIFY_OPTIONS);
    if (v.help) {
      out(OARNOTIFY_HELP);
      return 0;
    }
    if (v.version) {
      out("OAR version : 3.0.0 (oar-deno)");
      return 0;
    }
    if (positionals.length > 1) throw new CliError("one command at a time", 2, true);
    const sql = ctx.sql;
    const changes = v["enable-all-queues"] || v["disable-all-queues"] ||
      v["enable-queue"] !== undefined || v["disable-queue"] !== undefined ||
      v["add-queue"] !== undefined || v["remove-queue"] !== undefined;
    if (changes || positionals.length) await requireAdmin("oarnotify");
    let changed = false;
    if (v["add-queue"] !== undefined) {
      const m = /^([^,]+),(-?\d+),([A-Za-z0-9_.\/-]+)$/.exec(v["add-queue"]);
      if (!m) {
        throw new CliError(`bad --add-queue "${v["add-queue"]}": NAME,PRIORITY,POLICY`, 2, true);
      }
      const name = queueName(m[1]);
      const r = await sql`INSERT INTO queues (queue_name, priority, scheduler_policy, state)
        VALUES (${name}, ${Number(m[2])}, ${m[3]}, 'Active') ON CONFLICT DO NOTHING`;
      if (r.count === 0) throw new CliError(`queue ${name} already exists`, 1);
      changed = true;
    }
    if (v["remove-queue"] !== undefined) {
      const name = queueName(v["remove-queue"]);
      const r = await sql`DELETE FROM queues WHERE queue_name = ${name}`;
      if (r.count === 0) throw new CliError(`queue ${name} does not exist`, 1);
      changed = true;
    }
    if (v["enable-all-queues"]) await sql`UPDATE queues SET state = 'Active'`;
    if (v["disable-all-queues"]) await sql`UPDATE queues SET state = 'notActive'`;
    for (
      const [opt, state] of [["enable-queue", "Active"], ["disable-queue", "notActive"]] as const
    ) {
      const name = v[opt];
      if (name === undefined) continue;
      const r = await sql`UPDATE queues SET state = ${state} WHERE queue_name = ${queueName(name)}`;
      if (r.count === 0) throw new CliError(`queue ${name} does not exist`, 1);
    }
    if (changes) changed = true;
    if (v["list-queues"]) {
      const rows = await sql<
        { queue_name: string; priority: number; scheduler_policy: string; state: string }[]
      >`
        SELECT queue_name, priority, scheduler_policy, state FROM queues
        ORDER BY priority DESC, queue_name`;
      for (const q of rows) {
        out(q.queue_name);
        out(`\tpriority = ${q.priority}`);
        out(`\tpolicy = ${q.scheduler_policy}`);
        out(`\tstate = ${q.state}`);
      }
    }
    if (positionals.length) {
      const cmd = positionals[0];
      if (!isAlmightyCommand(cmd)) throw new CliError(`unknown almighty command "${cmd}"`, 2, true);
      ctx.notifier().almighty(cmd);
    } else if (changed) {
      // Queue changes matter to the scheduler at once.
      ctx.notifier().almighty("Term");
    }
    return 0;
  });
}
