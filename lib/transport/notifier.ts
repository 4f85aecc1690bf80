/**
 * What state-changing operations use to tell almighty (and bipbip_commander) that something
 * happened. The operations in lib/ take a Notifier instead of opening sockets themselves, so
 * they run unchanged in a module (ZeroMQ, lib/transport/zmq_notifier.ts), a CLI, or a test.
 */
import type { AlmightyCommand, CommanderMessage } from "../protocol/mod.ts";

export interface Notifier {
  /** Queue `{"cmd": cmd}` for almighty. Never throws; delivery is best effort as in OAR. */
  almighty(cmd: AlmightyCommand): void;
  /** Queue a message for bipbip_commander. Never throws. */
  commander(msg: CommanderMessage): void;
}

/** Records what was sent; for tests and for callers that batch notifications. */
export class RecordingNotifier implements Notifier {
  readonly almightyCommands: AlmightyCommand[] = [];
  readonly commanderMessages: CommanderMessage[] = [];
  almighty(cmd: AlmightyCommand): void {
    this.almightyCommands.push(cmd);
  }
  commander(msg: CommanderMessage): void {
    this.commanderMessages.push(msg);
  }
}
