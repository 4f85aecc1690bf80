/**
 * Shared set-up of the CLI tests: a fresh database with resources, an oar.conf pointing at it,
 * and a PULL socket standing in for almighty (APPENDICE_SERVER_PORT), so that notifications
 * can be checked and commands never wait on an absent peer, and a command server (the commands'
 * privileged half). Commands run as real child processes with their own permission flags
 * (runEntry).
 */
import type { EntryName } from "../lib/permissions/mod.ts";
import { PullSocket, terminate } from "../lib/transport/zmq.ts";
import { bindLoopback } from "./support/ports.ts";
import { runEntry, type Running, spawnEntry } from "./support/proc.ts";
import { startCommandServer } from "./support/command_server.ts";
import { createTestDb, type TestDb, writeConfigFile } from "./support/testdb.ts";

export class CliEnv implements AsyncDisposable {
  private constructor(
    readonly db: TestDb,
    readonly conf: string,
    readonly almighty: PullSocket,
    readonly server: Running,
  ) {}

  static async create(extra: Record<string, string | number> = {}): Promise<CliEnv> {
    const db = await createTestDb();
    const almighty = new PullSocket();
    const port = bindLoopback(almighty);
    const conf = await writeConfigFile(db, {
      SERVER_HOSTNAME: "127.0.0.1",
      APPENDICE_SERVER_PORT: port,
      LOG_LEVEL: 1,
      ...extra,
    });
    // The commands' privileged half, as the server host runs it.
    const server = await startCommandServer(conf);
    return new CliEnv(db, conf, almighty, server);
  }

  get sql() {
    return this.db.sql;
  }

  run(name: EntryName, args: string[], env: Record<string, string> = {}) {
    return runEntry(name, this.conf, args, { env });
  }

  spawn(name: EntryName, args: string[], env: Record<string, string> = {}) {
    return spawnEntry(name, this.conf, args, { env });
  }

  /** The next message almighty got, or null within `timeoutMs`. */
  nextMessage(timeoutMs = 5000): Promise<string | null> {
    return this.almighty.receiveText({ timeoutMs });
  }

  /** Every message already queued (none is waited for). */
  async drain(): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const m = await this.almighty.receiveText({ timeoutMs: 50 });
      if (m === null) return out;
      out.push(m);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.server.stop();
    this.almighty.close();
    await terminate();
    await this.db.drop();
  }
}
