/**
 * Run by tests/zmq_test.ts under `deno test --parallel` next to zmq_unload_wait.ts: leaves a
 * context whose I/O thread keeps waking (a PUSH reconnecting to a closed port) and never calls
 * terminate(). When this module's isolate ends, Deno unloads libzmq while the process lives on;
 * without the module's unload hook that thread then runs unmapped code and the process dies.
 */
import { PushSocket } from "../../lib/transport/zmq.ts";

Deno.test("zmq unload case: a reconnecting PUSH left open", () => {
  const push = new PushSocket({ lingerMs: 0 });
  push.connect(`tcp://127.0.0.1:${Deno.args[0] ?? "9"}`);
});
