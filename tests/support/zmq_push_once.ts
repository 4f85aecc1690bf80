/**
 * Child process for tests/zmq_test.ts: connects a PUSH socket to <endpoint>, sends <message>,
 * and exits once libzmq has flushed it. Run with only `--allow-ffi=<LIBZMQ_PATH>`.
 */
import { PushSocket, terminate } from "../../lib/transport/zmq.ts";

const [endpoint, message] = Deno.args;
const push = new PushSocket();
push.connect(endpoint);
await push.send(message);
await terminate();
