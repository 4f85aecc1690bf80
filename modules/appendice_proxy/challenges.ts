/**
 * The appendice proxy's challenge check (issue 20). An oarexec report names its job and carries
 * the job's challenge; a forged one used to cost a bipbip run and an event row each (20,000
 * forged lines: 20,000 runs, 12,928 events, honest reports delayed by minutes). The proxy checks
 * it first, against the database: lookups are batched (every report arriving within `batchMs` in
 * one query) and cached, so that a flood costs a map lookup per line, and at most one query per
 * job each `refreshMs` (a cached value that does not match is looked up again only that often: a
 * job started since gets its real challenge). Bad challenges are counted per job and written as
 * one BIPBIP_CHALLENGE event per job and minute (at most `maxEventsPerFlush` rows a minute), with
 * their count and the peers that sent them; lines naming no job make no event.
 *
 * Why the proxy, not bipbip_commander: it is the front door, the only place a forged line can be
 * dropped before it takes a queue slot, a held-report slot, or a turn in the job's one-at-a-time
 * queue (where an honest report would wait behind every forged one for its job). It reads one
 * table, challenges (and jobs), and writes event_logs. bipbip checks the challenge again: the
 * database is the authority, this is a filter. When the database cannot be read, reports are
 * passed (as before this check): bipbip decides.
 */
import type { Logger } from "../../lib/runtime/log.ts";
import type { Queryable } from "../../lib/db/client.ts";
import { insertEvents, type NewEvent } from "../../lib/job/events.ts";

export interface ChallengeCheckerOptions {
  /** A cached challenge that does not match is looked up again at most this often (1000 ms). */
  refreshMs?: number;
  /** Lookups are gathered this long into one query (5 ms). */
  batchMs?: number;
  /** Bad challenges are written this often (60,000 ms: one event per job and minute). */
  flushMs?: number;
  maxEventsPerFlush?: number;
  /** Most jobs cached (100,000): past it, the cache starts over. */
  maxCached?: number;
  log?: Logger;
}

interface Entry {
  /** null: no such job; "": a job without a challenge. */
  challenge: string | null;
  at: number;
}

export type Verdict = "ok" | "bad" | "no_job";

export class ChallengeChecker {
  #cache = new Map<number, Entry>();
  #waiting = new Map<number, ((e: Entry | null) => void)[]>();
  #batch: ReturnType<typeof setTimeout> | null = null;
  /** Bad challenges since the last flush: job → count and peers. */
  #bad = new Map<number, { n: number; hosts: Set<string> }>();
  #flushTimer: ReturnType<typeof setInterval>;
  #flushing: Promise<void> = Promise.resolve();
  readonly stats = { lookups: 0, queries: 0, bad: 0, events: 0 };

  constructor(readonly sql: Queryable, readonly opts: ChallengeCheckerOptions = {}) {
    this.#flushTimer = setInterval(() => this.flush(), opts.flushMs ?? 60_000);
  }

  async check(jobId: number, challenge: string, host: string): Promise<Verdict> {
    let e = this.#cache.get(jobId);
    if (
      e !== undefined && e.challenge !== null && e.challenge !== "" && e.challenge === challenge
    ) {
      return "ok";
    }
    if (e === undefined || performance.now() - e.at >= (this.opts.refreshMs ?? 1000)) {
      const fresh = await this.#lookup(jobId);
      if (fresh === null) return "ok"; // the database cannot be read: bipbip decides
      e = fresh;
    }
    if (e.challenge === null) return "no_job";
    if (e.challenge !== "" && e.challenge === challenge) return "ok";
    this.stats.bad++;
    let b = this.#bad.get(jobId);
    if (b === undefined) this.#bad.set(jobId, b = { n: 0, hosts: new Set() });
    b.n++;
    if (b.hosts.size < 8) b.hosts.add(host);
    return "bad";
  }

  #lookup(jobId: number): Promise<Entry | null> {
    this.stats.lookups++;
    return new Promise((resolve) => {
      const w = this.#waiting.get(jobId);
      if (w !== undefined) return w.push(resolve);
      this.#waiting.set(jobId, [resolve]);
      this.#batch ??= setTimeout(() => this.#query(), this.opts.batchMs ?? 5);
    });
  }

  async #query(): Promise<void> {
    this.#batch = null;
    const waiting = this.#waiting;
    this.#waiting = new Map();
    const ids = [...waiting.keys()];
    let rows: { job_id: number; challenge: string | null }[] | null = null;
    try {
      this.stats.queries++;
      rows = await this.sql<{ job_id: number; challenge: string | null }[]>`
        SELECT j.job_id, COALESCE(c.challenge, '') AS challenge
        FROM jobs j LEFT JOIN challenges c ON c.job_id = j.job_id
        WHERE j.job_id = ANY(${ids}::int[])`;
    } catch (e) {
      this.opts.log?.warn("cannot read challenges: {error}", { error: String(e) });
    }
    if (rows !== null && this.#cache.size + ids.length > (this.opts.maxCached ?? 100_000)) {
      this.#cache.clear();
    }
    const found = new Map(rows?.map((r) => [Number(r.job_id), r.challenge ?? ""]) ?? []);
    const at = performance.now();
    for (const [id, resolves] of waiting) {
      let e: Entry | null = null;
      if (rows !== null) {
        e = { challenge: found.get(id) ?? null, at };
        this.#cache.set(id, e);
      }
      for (const r of resolves) r(e);
    }
  }

  /** Writes the bad challenges counted since the last flush: one event per job. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flush());
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    if (this.#bad.size === 0) return;
    const bad = this.#bad;
    this.#bad = new Map();
    const max = this.opts.maxEventsPerFlush ?? 1000;
    const events: NewEvent[] = [];
    let skipped = 0;
    for (const [jobId, b] of bad) {
      if (events.length >= max) {
        skipped++;
        continue;
      }
      events.push({
        type: "BIPBIP_CHALLENGE",
        jobId,
        description: `${b.n} report(s) with a bad challenge from ${
          [...b.hosts].join(", ")
        }, perhaps a pirate attack???`,
      });
    }
    try {
      await insertEvents(this.sql, events);
      this.stats.events += events.length;
    } catch (e) {
      this.opts.log?.warn("cannot write {n} bad-challenge event(s): {error}", {
        n: events.length,
        error: String(e),
      });
    }
    if (skipped > 0) {
      this.opts.log?.warn("bad challenges for {n} more job(s) not written as events", {
        n: skipped,
      });
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    if (this.#batch !== null) {
      clearTimeout(this.#batch);
      await this.#query();
    }
    await this.flush();
  }
}
