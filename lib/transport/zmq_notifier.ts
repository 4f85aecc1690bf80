/**
 * The Notifier over ZeroMQ: PUSH sockets to almighty and bipbip_commander, created on first use
 * (as OAR's notify_almighty does), with sends kept in call order. Delivery is best effort, as in
 * OAR; `close()` waits for what is queued to be handed over before the process exits.
 */
import type { Config } from "../runtime/config.ts";
import { almightyEndpoint, commanderEndpoint } from "./endpoints.ts";
import type { Notifier } from "./notifier.ts";
import {
  type AlmightyCommand,
  type CommanderMessage,
  encodeAlmightyMessage,
  encodeCommanderMessage,
} from "../protocol/mod.ts";
import { PushSocket, terminate } from "./zmq.ts";
import type { Logger } from "../runtime/log.ts";

export class ZmqNotifier implements Notifier {
  #almighty: PushSocket | null = null;
  #commander: PushSocket | null = null;
  #pending = new Set<Promise<void>>();

  constructor(readonly config: Config, readonly log?: Logger) {}

  #send(target: "almighty" | "commander", text: string): void {
    try {
      if (target === "almighty") {
        this.#almighty ??= connectPush(almightyEndpoint(this.config));
      } else {
        this.#commander ??= connectPush(commanderEndpoint(this.config));
      }
      const socket = target === "almighty" ? this.#almighty! : this.#commander!;
      const p = socket.send(text).catch((e) => {
        this.log?.error("cannot notify {target}: {error}", { target, error: String(e) });
      });
      this.#pending.add(p);
      p.finally(() => this.#pending.delete(p));
    } catch (e) {
      this.log?.error("cannot notify {target}: {error}", { target, error: String(e) });
    }
  }

  almighty(cmd: AlmightyCommand): void {
    this.#send("almighty", encodeAlmightyMessage({ cmd }));
  }

  commander(msg: CommanderMessage): void {
    this.#send("commander", encodeCommanderMessage(msg));
  }

  /**
   * Waits until every queued message was handed to libzmq and flushed (within the linger). The
   * notifier may be used again: the sockets are opened anew on the next send.
   */
  async close(): Promise<void> {
    await Promise.all(this.#pending);
    this.#almighty?.close();
    this.#commander?.close();
    this.#almighty = this.#commander = null;
    await terminate();
  }
}

function connectPush(endpoint: string): PushSocket {
  const s = new PushSocket();
  s.connect(endpoint);
  return s;
}
