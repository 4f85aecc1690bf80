/**
 * lib/transport/zmq.ts throughput and latency, over TCP loopback:
 *   deno run --allow-ffi=/usr/lib/x86_64-linux-gnu/libzmq.so.5 --allow-run bench/zmq_bench.ts \
 *     [bulkCount=100000] [roundTrips=2000]
 * (`-A` works as well). Prints `name value` lines: bulk messages/s through one PUSH→PULL pair,
 * then round-trip latency through two pairs (PUSH→PULL there, PUSH→PULL back) with the echo
 * side in another Deno process, then with it in this process (same event loop).
 */
import { LIBZMQ_PATH, PullSocket, PushSocket, terminate } from "../lib/transport/zmq.ts";

const MSG = JSON.stringify({ cmd: "Qsub", job_id: 123456 });

/** Sends back every request until an empty one. */
async function echo(requests: string, replies: string): Promise<void> {
  const pull = new PullSocket();
  const push = new PushSocket();
  pull.connect(requests);
  push.connect(replies);
  for (;;) {
    const m = await pull.receive();
    if (m === null || m.length === 0) break;
    await push.send(m);
  }
  pull.close();
  push.close();
}

async function bulk(n: number): Promise<number> {
  const pull = new PullSocket();
  const push = new PushSocket();
  pull.bind("tcp://127.0.0.1:*");
  push.connect(pull.lastEndpoint);
  await push.send(MSG);
  await pull.receive();
  const t0 = performance.now();
  const receiver = (async () => {
    for (let i = 0; i < n; i++) {
      if (await pull.receive() === null) throw new Error("receive failed");
    }
  })();
  for (let i = 0; i < n; i++) await push.send(MSG);
  await receiver;
  const seconds = (performance.now() - t0) / 1000;
  push.close();
  pull.close();
  return n / seconds;
}

/** Round trips, one at a time; returns the sorted latencies in ms. */
async function roundTrips(n: number, inProcess: boolean): Promise<number[]> {
  const requests = new PushSocket();
  const replies = new PullSocket();
  requests.bind("tcp://127.0.0.1:*");
  replies.bind("tcp://127.0.0.1:*");
  const args = [requests.lastEndpoint, replies.lastEndpoint] as const;
  let child: Deno.ChildProcess | null = null;
  let echoer: Promise<void> | null = null;
  if (inProcess) {
    // Shares this event loop: measures the binding's own overhead with no second process.
    echoer = echo(...args);
  } else {
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-ffi=${LIBZMQ_PATH}`, import.meta.filename!, "--echo", ...args],
      stdin: "null",
    }).spawn();
  }
  const warmup = 200;
  const times: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    await requests.send(MSG);
    if (await replies.receive({ timeoutMs: 30_000 }) === null) throw new Error("no reply");
    if (i >= warmup) times.push(performance.now() - t0);
  }
  await requests.send(new Uint8Array(0));
  await child?.status;
  await echoer;
  requests.close();
  replies.close();
  return times.sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

if (Deno.args[0] === "--echo") {
  await echo(Deno.args[1], Deno.args[2]);
  await terminate();
} else {
  const n = Number(Deno.args[0] ?? 100_000);
  const rt = Number(Deno.args[1] ?? 2_000);
  console.log(`bulk_messages ${n}`);
  console.log(`bulk_msgs_per_s ${Math.round(await bulk(n))}`);
  for (const inProcess of [false, true]) {
    const where = inProcess ? "in_process" : "other_process";
    const t = await roundTrips(rt, inProcess);
    console.log(`rtt_${where}_count ${t.length}`);
    console.log(`rtt_${where}_median_ms ${percentile(t, 0.5).toFixed(3)}`);
    console.log(`rtt_${where}_p99_ms ${percentile(t, 0.99).toFixed(3)}`);
  }
  await terminate();
}
