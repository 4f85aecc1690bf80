/**
 * Child process for tests/zmq_test.ts: binds a PULL socket on <endpoint>, prints the first
 * message it receives, exits 0; exits 1 if none arrives within <timeoutMs>.
 */
import { PullSocket, terminate } from "../../lib/transport/zmq.ts";

const [endpoint, timeoutMs] = Deno.args;
const pull = new PullSocket();
pull.bind(endpoint);
const text = await pull.receiveText({ timeoutMs: Number(timeoutMs) });
await terminate();
if (text === null) Deno.exit(1);
console.log(text);
