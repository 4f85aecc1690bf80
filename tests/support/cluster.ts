/**
 * The whole server (tests/support/server.ts) driving a cluster in a box (lib/cluster/): hosts
 * in network namespaces reached through the ssh launcher, with their resources registered in
 * place of the embedded default's node1..nodeN. Disposal stops the server and removes the
 * cluster, whatever happened in between.
 */
import { readConfigFile } from "../../lib/runtime/config.ts";
import { connect } from "../../lib/db/client.ts";
import {
  clusterDown,
  type ClusterHost,
  type ClusterInfo,
  clusterUp,
  killSshd,
  leftovers,
  startSshd,
  unavailableReason,
} from "../../tools/cluster/netns.ts";
import { clusterConfig, registerClusterResources } from "../../tools/cluster/server.ts";
import { waitFor } from "./proc.ts";
import { TestServer } from "./server.ts";

export { unavailableReason };

export interface ClusterServerOptions {
  hosts: number;
  cores: number;
  /** oar.conf keys for the test (timers...), on top of the cluster's. */
  config?: Record<string, string | number>;
}

export class ClusterServer {
  private constructor(readonly server: TestServer, readonly cluster: ClusterInfo) {}

  static async create(opts: ClusterServerOptions): Promise<ClusterServer> {
    const cluster = await clusterUp({ hosts: opts.hosts, cores: opts.cores });
    let server: TestServer | null = null;
    try {
      server = await TestServer.create();
      // A first run creates the database and oar.conf; the hosts' resources replace the default
      // ones while nothing has run yet.
      await server.start({ hosts: 1, cores: 1 });
      const sql = connect(readConfigFile(server.confPath), { max: 1 });
      try {
        await registerClusterResources(sql, cluster, { replace: true });
      } finally {
        await sql.end();
      }
      const code = await server.stop();
      if (code !== 0) throw new Error(`first server run ended with ${code}\n${server.log}`);
      await server.configure({
        ...(await clusterConfig(cluster, server.confPath)),
        ...(opts.config ?? {}),
      });
      await server.start();
      return new ClusterServer(server, cluster);
    } catch (e) {
      try {
        await server?.[Symbol.asyncDispose]();
      } finally {
        await clusterDown(cluster);
      }
      throw e;
    }
  }

  host(index: number): ClusterHost {
    const h = this.cluster.hosts[index - 1];
    if (!h) throw new Error(`no host ${index}`);
    return h;
  }

  killSshd(index: number): Promise<void> {
    return killSshd(this.cluster, this.host(index));
  }

  startSshd(index: number): Promise<void> {
    return startSshd(this.cluster, this.host(index));
  }

  /** Each host's state as `oarnodes -s -J` shows it (one state when all its resources agree). */
  async nodeStates(): Promise<Record<string, string>> {
    const r = await this.server.task(["oarnodes", "-s", "-J"]);
    if (r.code !== 0) throw new Error(`oarnodes failed: ${r.stdout}${r.stderr}`);
    const out: Record<string, string> = {};
    for (const [host, byRes] of Object.entries(JSON.parse(r.stdout) as Record<string, object>)) {
      out[host] = [...new Set(Object.values(byRes) as string[])].join(",");
    }
    return out;
  }

  async waitNodeState(index: number, state: string, timeoutMs = 60_000): Promise<void> {
    const host = this.host(index).name;
    await waitFor(`${host} to be ${state}`, async () => {
      const s = await this.nodeStates();
      return s[host] === state;
    }, timeoutMs).catch((e) => {
      throw new Error(`${e.message}\n${this.server.log}`);
    });
  }

  /**
   * The cluster goes first: its hosts vanish with whatever runs there (oarexecs name the var
   * directory in their flags, and the server's stop waits for every such process to end).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await clusterDown(this.cluster);
    } finally {
      await this.server[Symbol.asyncDispose]();
    }
    const left = await leftovers(this.cluster);
    if (left.length) throw new Error(`cluster leftovers: ${left.join(", ")}`);
  }
}

/**
 * Job states as `oarstat -s -J` prints them, for many waiters at once: one oarstat for every
 * tracked job at most every `periodMs`, so that scenarios running side by side do not each
 * start a command per probe (each is a Deno start-up on a 2-core machine).
 */
export class JobWatch {
  readonly #ids = new Set<number>();
  #states = new Map<number, string>();
  #inflight: Promise<void> | null = null;
  #last = 0;

  constructor(readonly server: TestServer, readonly periodMs = 250) {}

  track(id: number): void {
    this.#ids.add(id);
  }

  async states(): Promise<ReadonlyMap<number, string>> {
    if (!this.#inflight && Date.now() - this.#last >= this.periodMs) {
      const ids = [...this.#ids];
      this.#inflight = (async () => {
        const r = await this.server.task([
          "oarstat",
          "-s",
          "-J",
          ...ids.flatMap((i) => ["-j", `${i}`]),
        ]);
        if (r.code !== 0) throw new Error(`oarstat failed (${r.code}): ${r.stdout}${r.stderr}`);
        const parsed = JSON.parse(r.stdout) as Record<string, string>;
        this.#states = new Map(Object.entries(parsed).map(([k, v]) => [Number(k), v]));
        this.#last = Date.now();
      })().finally(() => (this.#inflight = null));
    }
    if (this.#inflight) await this.#inflight;
    return this.#states;
  }

  /** Waits until the job is in one of `states`; returns that state. */
  async waitFor(id: number, states: string[], timeoutMs = 60_000): Promise<string> {
    this.track(id);
    let seen: string | undefined;
    return await waitFor(`job ${id} to be ${states.join(" or ")}`, async () => {
      seen = (await this.states()).get(id);
      return seen !== undefined && states.includes(seen) ? seen : undefined;
    }, timeoutMs).catch((e) => {
      throw new Error(`${e.message} (last seen: ${seen})`);
    });
  }
}

/**
 * Runs `fn` on a fresh cluster server and always disposes of it. The body's error wins (a
 * disposal error is then printed, not thrown), so a failure is never hidden behind a
 * SuppressedError.
 */
export async function withClusterServer(
  opts: ClusterServerOptions,
  fn: (cs: ClusterServer) => Promise<void>,
): Promise<void> {
  const cs = await ClusterServer.create(opts);
  try {
    await fn(cs);
  } catch (e) {
    await cs[Symbol.asyncDispose]().catch((d) =>
      console.error(`cluster disposal after a failure: ${(d as Error).stack ?? d}`)
    );
    throw e;
  }
  await cs[Symbol.asyncDispose]();
}
