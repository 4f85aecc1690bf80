/**
 * Greta, the energy-saving node manager (docs/modules.md §10, docs/differences.md §11). One
 * `handle` per received message (CHECK, HALT, WAKEUP): keep-alive wake-ups, boot time-outs,
 * reminders, then halt and wake commands through the window forker. Its memory (what runs, what to
 * remind) is saved after every message so that a greta killed mid-way resumes where it was.
 */
import { join } from "node:path";
import type { Sql } from "../../lib/db/client.ts";
import { addEvent } from "../../lib/job/events.ts";
import { LIVE_STATES } from "../../lib/job/states.ts";
import type { Logger } from "../../lib/runtime/log.ts";
import type { Notifier } from "../../lib/transport/notifier.ts";
import type { GretaMessage } from "../../lib/protocol/mod.ts";
import { setNodeNextState } from "../../lib/resource/resources.ts";
import { getTimeout, type KeepAlive } from "./config.ts";
import type { NodeCommand, WindowForker } from "./forker.ts";

export interface RunningCommand {
  command: NodeCommand;
  /** For WAKEUP: the date (DB seconds) after which a node still not Alive is suspected. */
  timeout: number;
}

export interface GretaState {
  running: Record<string, RunningCommand>;
  toRemind: Record<string, NodeCommand>;
}

export interface GretaDeps {
  sql: Sql;
  notifier: Notifier;
  forker: WindowForker;
  keepAlive: KeepAlive[];
  timeouts: Map<number, number>;
  /** Where the state is saved (OAR_RUNTIME_DIRECTORY); null: not saved. */
  stateDir: string | null;
  log?: Logger;
}

export class Greta {
  state: GretaState = { running: {}, toRemind: {} };

  constructor(readonly deps: GretaDeps) {}

  get stateFile(): string | null {
    return this.deps.stateDir ? join(this.deps.stateDir, "greta_status.json") : null;
  }

  /** Restores the state a previous greta saved, then removes the file (docs/modules.md §10.2). */
  async restore(): Promise<void> {
    const file = this.stateFile;
    if (!file) return;
    try {
      const saved = JSON.parse(await Deno.readTextFile(file));
      if (saved && typeof saved === "object") {
        this.state = { running: saved.running ?? {}, toRemind: saved.toRemind ?? {} };
      }
      await Deno.remove(file);
      this.deps.log?.info("restored state: {n} commands running", {
        n: Object.keys(this.state.running).length,
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.deps.log?.warn("cannot restore saved state: {error}", { error: String(e) });
      }
    }
  }

  async save(): Promise<void> {
    const file = this.stateFile;
    if (!file) return;
    const tmp = `${file}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(this.state));
    await Deno.rename(tmp, file);
  }

  async #changeNodeState(host: string, state: "Suspected" | "Absent"): Promise<void> {
    await setNodeNextState(this.deps.sql, host, state);
    this.deps.notifier.almighty("ChState");
  }

  async #suspect(host: string, why: string): Promise<void> {
    await this.#changeNodeState(host, "Suspected");
    await addEvent(this.deps.sql, {
      type: "LOG_SUSPECTED",
      jobId: 0,
      description: why,
      hosts: [host],
    });
    this.deps.log?.warn(why);
  }

  /** docs/modules.md §10.4: results of finished and timed-out commands. */
  async checkExecutors(): Promise<void> {
    for (const f of this.deps.forker.takeFinished()) {
      if (f.code === null) {
        if (f.command === "HALT") {
          await this.#suspect(
            f.host,
            `Node ${f.host} was suspected because the shutdown command launched by Greta timeouted`,
          );
          delete this.state.running[f.host];
        }
      } else if (f.code !== 0) {
        await this.#suspect(
          f.host,
          `Node ${f.host} was suspected because an error occurred with a command launched by Greta`,
        );
        delete this.state.running[f.host];
      } else if (f.command === "HALT") {
        delete this.state.running[f.host];
      }
      // A WAKEUP that ended well stays until the node is seen Alive or its timeout passes.
    }
  }

  async #now(): Promise<number> {
    const [r] = await this.deps.sql`SELECT EXTRACT(EPOCH FROM now())::int AS now`;
    return Number(r.now);
  }

  /** Hosts (state or next_state Alive) with resources held by jobs not yet ended. */
  async #occupied(): Promise<Set<string>> {
    const rows = await this.deps.sql<{ h: string }[]>`
      SELECT DISTINCT r.network_address AS h
      FROM resources r
      JOIN assigned_resources a ON a.resource_id = r.resource_id
      JOIN jobs j ON j.assigned_moldable_job = a.moldable_job_id
      WHERE j.state::text IN ${this.deps.sql(LIVE_STATES)}
        AND (r.state = 'Alive' OR r.next_state = 'Alive')`;
    return new Set(rows.map((r) => r.h));
  }

  async #wakeable(now: number): Promise<Set<string>> {
    const rows = await this.deps.sql<{ h: string }[]>`
      SELECT DISTINCT network_address AS h FROM resources
      WHERE state = 'Absent' AND available_upto > ${now} AND network_address <> ''`;
    return new Set(rows.map((r) => r.h));
  }

  async #aliveHosts(hosts: string[]): Promise<Set<string>> {
    if (hosts.length === 0) return new Set();
    const rows = await this.deps.sql<{ h: string }[]>`
      SELECT DISTINCT network_address AS h FROM resources
      WHERE state = 'Alive' AND network_address IN ${this.deps.sql(hosts)}`;
    return new Set(rows.map((r) => r.h));
  }

  /** Hosts matching a keep-alive condition, evaluated read-only (it is admin-written SQL). */
  #conditionHosts(condition: string): Promise<{ host: string; state: string; next: string }[]> {
    return this.deps.sql.begin(async (tx) => {
      await tx`SET TRANSACTION READ ONLY`;
      return await tx.unsafe(
        `SELECT DISTINCT network_address AS host, state, next_state AS next FROM resources
         WHERE network_address <> '' AND (${condition}) ORDER BY network_address`,
      );
    }) as Promise<{ host: string; state: string; next: string }[]>;
  }

  /** One message (docs/modules.md §10.3); unknown commands were refused by the parser already. */
  async handle(msg: GretaMessage): Promise<void> {
    await this.checkExecutors();
    const nodes = [...msg.nodes];
    const now = await this.#now();
    const occupied = await this.#occupied();
    const wakeable = await this.#wakeable(now);
    const toProcess = new Map<string, RunningCommand>();

    // Keep-alive: wake enough idle nodes for each condition.
    const idleCount = new Map<KeepAlive, number>();
    const condHosts = new Map<KeepAlive, Set<string>>();
    for (const ka of this.deps.keepAlive) {
      let rows;
      try {
        rows = await this.#conditionHosts(ka.condition);
      } catch (e) {
        this.deps.log?.error("keep-alive condition {c} failed: {error}", {
          c: ka.condition,
          error: String(e),
        });
        continue;
      }
      const byHost = new Map<string, boolean>();
      for (const r of rows) {
        byHost.set(
          r.host,
          (byHost.get(r.host) ?? false) || r.state === "Alive" || r.next === "Alive",
        );
      }
      const alive = [...byHost].filter(([, a]) => a).map(([h]) => h);
      const idle = alive.filter((h) => !occupied.has(h));
      let current = idle.length;
      const candidates = [...byHost.keys()].filter((h) => !alive.includes(h));
      for (const h of candidates) {
        if (current >= ka.min) break;
        if (!wakeable.has(h)) continue;
        current++;
        if (!this.state.running[h]) toProcess.set(h, { command: "WAKEUP", timeout: -1 });
      }
      idleCount.set(ka, current);
      condHosts.set(ka, new Set(byHost.keys()));
    }

    // Booting nodes: up, or past their timeout.
    const waking = Object.entries(this.state.running).filter(([, c]) => c.command === "WAKEUP");
    const upNow = await this.#aliveHosts(waking.map(([h]) => h));
    for (const [host, c] of waking) {
      if (upNow.has(host)) {
        this.deps.log?.info("{host} seems now up", { host });
        delete this.state.running[host];
      } else if (now > c.timeout) {
        await this.#suspect(
          host,
          `Node ${host} was suspected because it did not wake up before the end of the timeout`,
        );
        delete this.state.running[host];
        const i = nodes.indexOf(host);
        if (i >= 0) nodes.splice(i, 1);
      }
    }

    // Reminders are replayed once, then forgotten (docs/differences.md §11).
    for (const [host, command] of Object.entries(this.state.toRemind)) {
      if (!this.state.running[host]) {
        toProcess.set(host, { command, timeout: -1 });
        delete this.state.toRemind[host];
      }
    }

    if (msg.cmd !== "CHECK") {
      for (const host of nodes) {
        const r = this.state.running[host];
        if (r) {
          if (r.command !== msg.cmd) this.state.toRemind[host] = msg.cmd;
        } else toProcess.set(host, { command: msg.cmd, timeout: -1 });
      }
    }

    const timeout = getTimeout(
      this.deps.timeouts,
      Object.keys(this.state.running).length + toProcess.size,
    );
    const queued: { host: string; command: NodeCommand }[] = [];
    for (const [host, entry] of toProcess) {
      if (entry.command === "WAKEUP") {
        entry.timeout = now + timeout;
        queued.push({ host, command: "WAKEUP" });
        continue;
      }
      const protectedBy = this.deps.keepAlive.find((ka) =>
        condHosts.get(ka)?.has(host) && (idleCount.get(ka) ?? 0) <= ka.min
      );
      if (protectedBy) {
        this.deps.log?.info("not halting {host}: keep-alive {c}", {
          host,
          c: protectedBy.condition,
        });
        delete this.state.running[host];
        toProcess.delete(host);
        continue;
      }
      for (const ka of this.deps.keepAlive) {
        if (condHosts.get(ka)?.has(host)) idleCount.set(ka, (idleCount.get(ka) ?? 0) - 1);
      }
      await this.#changeNodeState(host, "Absent");
      queued.push({ host, command: "HALT" });
    }

    for (const kind of ["HALT", "WAKEUP"] as const) {
      const hosts = queued.filter((q) => q.command === kind).map((q) => q.host);
      if (hosts.length === 0) continue;
      await addEvent(this.deps.sql, {
        type: kind === "HALT" ? "HALT_NODE" : "WAKEUP_NODE",
        jobId: 0,
        description: `${kind === "HALT" ? "Halting" : "Waking up"} nodes: ${hosts.join(" ")}`,
        hosts,
      });
    }
    for (const q of queued) this.deps.forker.submit(q.host, q.command);
    for (const [host, entry] of toProcess) this.state.running[host] = entry;
    await this.save();
  }
}
