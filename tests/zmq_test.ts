import pLimit from "p-limit";
import {
  LIBZMQ_PATH,
  PullSocket,
  PushSocket,
  terminate,
  version,
  ZmqError,
} from "../lib/transport/zmq.ts";
import { assertEquals, assertOk, assertRejects, assertThrows } from "./support/assert.ts";
import { freePort } from "./support/ports.ts";

const PYTHON = "/usr/bin/python3";
const decoder = new TextDecoder();

/** Exactly the flags lib/transport/zmq.ts documents; the env flag only matters when the path is overridden. */
function childFlags(): string[] {
  const flags = [`--allow-ffi=${LIBZMQ_PATH}`];
  if (Deno.env.get("OAR_LIBZMQ")) flags.push("--allow-env=OAR_LIBZMQ");
  return flags;
}

function supportScript(name: string): string {
  return new URL(`./support/${name}`, import.meta.url).pathname;
}

async function tcpEndpoint(): Promise<string> {
  return `tcp://127.0.0.1:${await freePort()}`;
}

async function runChild(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function elapsedSince(t0: number): number {
  return performance.now() - t0;
}

Deno.test("zmq: libzmq loads and reports its version", () => {
  assertOk(/^4\.\d+\.\d+$/.test(version()), version());
});

Deno.test("zmq: first PUSH→PULL message from a fresh process arrives, 50 runs", async () => {
  const pull = new PullSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    const expected = new Set(Array.from({ length: 50 }, (_, i) => `first-${i}`));
    const limit = pLimit(4);
    const children = Promise.all(
      [...expected].map((msg) =>
        limit(async () => {
          const r = await runChild([
            "run",
            ...childFlags(),
            supportScript("zmq_push_once.ts"),
            endpoint,
            msg,
          ]);
          assertEquals(r.code, 0, `push child for ${msg} failed: ${r.stderr}`);
        })
      ),
    );
    const got = new Set<string>();
    const deadline = performance.now() + 60_000;
    while (got.size < expected.size && performance.now() < deadline) {
      const text = await pull.receiveText({ timeoutMs: deadline - performance.now() });
      if (text === null) break;
      assertOk(expected.has(text) && !got.has(text), `unexpected message ${text}`);
      got.add(text);
    }
    await children;
    assertEquals([...expected].filter((m) => !got.has(m)), [], "messages never delivered");
  } finally {
    pull.close();
    await pull.closed;
  }
});

Deno.test("zmq: first message into a fresh PULL process arrives, 10 runs", async () => {
  const limit = pLimit(4);
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      limit(async () => {
        const endpoint = await tcpEndpoint();
        const child = runChild([
          "run",
          ...childFlags(),
          supportScript("zmq_pull_once.ts"),
          endpoint,
          "30000",
        ]);
        const push = new PushSocket();
        try {
          // Connecting before the child binds is fine: libzmq queues and keeps reconnecting.
          push.connect(endpoint);
          await push.send(`reverse-${i}`);
          const r = await child;
          assertEquals(r.code, 0, `pull child ${i} failed: ${r.stderr}`);
          assertEquals(r.stdout.trim(), `reverse-${i}`);
        } finally {
          push.close();
          await push.closed;
        }
      })),
  );
});

Deno.test("zmq: 20,000 messages arrive in order", async () => {
  const pull = new PullSocket();
  const push = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    push.connect(endpoint);
    const n = 20_000;
    const receiver = (async () => {
      for (let i = 0; i < n; i++) {
        const text = await pull.receiveText({ timeoutMs: 30_000 });
        if (text !== `m${i}`) throw new Error(`message ${i}: got ${text}`);
      }
    })();
    for (let i = 0; i < n; i++) await push.send(`m${i}`);
    await receiver;
  } finally {
    push.close();
    pull.close();
    await Promise.all([push.closed, pull.closed]);
  }
});

Deno.test("zmq: a message over the limit is dropped with its sender; others still arrive", async () => {
  const pull = new PullSocket({ maxMessageBytes: 1024 });
  const big = new PushSocket();
  const small = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    big.connect(endpoint);
    small.connect(endpoint);
    await big.send("x".repeat(4096));
    await small.send("hello");
    assertEquals(await pull.receiveText({ timeoutMs: 5000 }), "hello");
    assertEquals(await pull.receiveText({ timeoutMs: 300 }), null);
  } finally {
    for (const s of [big, small, pull]) s.close();
    await Promise.all([big.closed, small.closed, pull.closed]);
  }
});

async function requirePythonZmq(): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(PYTHON, {
      args: ["-c", "import zmq"],
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`${PYTHON} is required for the ZeroMQ interop test: ${e}`);
  }
  if (!out.success) {
    throw new Error(
      `${PYTHON} cannot import zmq: install Debian's python3-zmq (apt-get install python3-zmq)\n` +
        decoder.decode(out.stderr),
    );
  }
}

const PY_PUSH = `
import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.LINGER, 10000)
s.connect(sys.argv[1])
for m in json.loads(sys.argv[2]):
    s.send_string(json.dumps(m))
s.close()
ctx.term()
`;

const PY_PULL = `
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 30000)
s.bind(sys.argv[1])
for _ in range(int(sys.argv[2])):
    print(s.recv().decode(), flush=True)
s.close()
ctx.term()
`;

const PAYLOADS = [
  { cmd: "Qsub" },
  { cmd: "Term" },
  { cmd: "OARRUNJOB_42", args: ["ééé", 1, null] },
  { cmd: "ChState", job_id: 7 },
];

Deno.test("zmq: interop, Python PUSH → our PULL", async () => {
  await requirePythonZmq();
  const pull = new PullSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    const py = new Deno.Command(PYTHON, {
      args: ["-c", PY_PUSH, endpoint, JSON.stringify(PAYLOADS)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const got = [];
    for (const _ of PAYLOADS) {
      const text = await pull.receiveText({ timeoutMs: 30_000 });
      assertOk(text !== null, "timed out waiting for Python's message");
      got.push(JSON.parse(text));
    }
    const r = await py;
    assertOk(r.success, decoder.decode(r.stderr));
    assertEquals(got, PAYLOADS);
  } finally {
    pull.close();
    await pull.closed;
  }
});

Deno.test("zmq: interop, our PUSH → Python PULL", async () => {
  await requirePythonZmq();
  const push = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    const py = new Deno.Command(PYTHON, {
      args: ["-c", PY_PULL, endpoint, String(PAYLOADS.length)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    push.connect(endpoint);
    for (const p of PAYLOADS) await push.send(JSON.stringify(p));
    const r = await py;
    assertOk(r.success, decoder.decode(r.stderr));
    const lines = decoder.decode(r.stdout).trim().split("\n");
    assertEquals(lines.map((l) => JSON.parse(l)), PAYLOADS);
  } finally {
    push.close();
    await push.closed;
  }
});

Deno.test("zmq: receive with timeoutMs resolves null at the deadline", async () => {
  const pull = new PullSocket();
  try {
    pull.bind(await tcpEndpoint());
    const t0 = performance.now();
    assertEquals(await pull.receive({ timeoutMs: 60 }), null);
    const took = elapsedSince(t0);
    assertOk(took >= 55 && took < 2000, `took ${took} ms`);
    assertEquals(await pull.receive({ timeoutMs: 0 }), null);
  } finally {
    pull.close();
    await pull.closed;
  }
});

Deno.test("zmq: an AbortSignal ends a receive promptly", async () => {
  const pull = new PullSocket();
  try {
    pull.bind(await tcpEndpoint());
    const ac = new AbortController();
    const pending = pull.receive({ signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    ac.abort();
    assertEquals(await pending, null);
    assertOk(elapsedSince(t0) < 50, `abort took ${elapsedSince(t0)} ms`);
    assertEquals(await pull.receive({ signal: AbortSignal.abort() }), null);
  } finally {
    pull.close();
    await pull.closed;
  }
});

Deno.test("zmq: after an abort the socket still delivers, and queued receives keep order", async () => {
  const pull = new PullSocket();
  const push = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    push.connect(endpoint);
    const ac = new AbortController();
    const aborted = pull.receive({ signal: ac.signal });
    ac.abort();
    assertEquals(await aborted, null);
    const first = pull.receiveText({ timeoutMs: 10_000 });
    const second = pull.receiveText({ timeoutMs: 10_000 });
    await push.send("one");
    await push.send("two");
    assertEquals(await Promise.all([first, second]), ["one", "two"]);
  } finally {
    push.close();
    pull.close();
    await Promise.all([push.closed, pull.closed]);
  }
});

Deno.test("zmq: bad endpoints and libzmq errors throw ZmqError with libzmq's text", async () => {
  const pull = new PullSocket();
  const other = new PullSocket();
  try {
    const e1 = assertThrows(() => pull.bind("bogus"), ZmqError, "Invalid argument");
    assertEquals(e1.errno, 22);
    assertThrows(() => pull.connect("tcp://"), ZmqError);
    assertThrows(() => pull.bind("tcp://127.0.0.1:notaport"), ZmqError);
    assertThrows(() => pull.bind("nosuchtransport://x"), ZmqError, "Protocol not supported");
    assertThrows(() => pull.bind("tcp://127.0.0.1:1\0"), ZmqError);
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    assertThrows(() => other.bind(endpoint), ZmqError, "Address already in use");
  } finally {
    pull.close();
    other.close();
    await Promise.all([pull.closed, other.closed]);
  }
  assertThrows(() => pull.bind("tcp://127.0.0.1:*"), ZmqError, "closed");
});

Deno.test("zmq: a send that cannot proceed times out with EAGAIN; close rejects queued sends", async () => {
  const push = new PushSocket();
  try {
    push.bind(await tcpEndpoint()); // no peer: a PUSH socket has nowhere to queue
    const e = await assertRejects(() => push.send("x", { timeoutMs: 50 }), ZmqError);
    assertEquals(e.errno, 11);
    const queued = push.send("y");
    push.close();
    await assertRejects(() => queued, ZmqError, "closed");
    await assertRejects(() => push.send("z"), ZmqError, "closed");
  } finally {
    push.close();
    await push.closed;
  }
});

Deno.test("zmq: empty, binary and large messages round-trip", async () => {
  // The binding carries messages of any size; the protocol's limit is only the default.
  const pull = new PullSocket({ maxMessageBytes: 4 * 1024 * 1024 });
  const push = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    push.connect(endpoint);
    const big = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff);
    const bin = new Uint8Array([0, 255, 0, 1, 2]);
    const mid = new Uint8Array(64 * 1024).fill(9);
    for (const m of [new Uint8Array(0), bin, big, mid]) await push.send(m);
    assertEquals(await pull.receive({ timeoutMs: 10_000 }), new Uint8Array(0));
    assertEquals(await pull.receive({ timeoutMs: 10_000 }), bin);
    const gotBig = await pull.receive({ timeoutMs: 10_000 });
    assertOk(gotBig !== null && gotBig.length === big.length, "large message lost");
    assertOk(gotBig.every((b, i) => b === big[i]), "large message corrupted");
    assertEquals(await pull.receive({ timeoutMs: 10_000 }), mid);
  } finally {
    push.close();
    pull.close();
    await Promise.all([push.closed, pull.closed]);
  }
});

Deno.test("zmq: close while a receive is pending resolves it with null", async () => {
  const pull = new PullSocket();
  pull.bind(await tcpEndpoint());
  const pending = pull.receive();
  const withTimeout = pull.receive({ timeoutMs: 60_000 });
  // Let the first receive reach its poll on the worker thread.
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  pull.close();
  assertEquals(await pending, null);
  assertEquals(await withTimeout, null);
  assertOk(elapsedSince(t0) < 50, `close took ${elapsedSince(t0)} ms to settle receives`);
  await pull.closed;
  assertEquals(await pull.receive(), null);
  pull.close();
});

Deno.test("zmq: terminate() closes everything, returns, and can be called twice", async () => {
  const pull = new PullSocket();
  const push = new PushSocket();
  const endpoint = await tcpEndpoint();
  pull.bind(endpoint);
  push.connect(endpoint);
  await push.send("before");
  assertEquals(await pull.receiveText({ timeoutMs: 10_000 }), "before");
  const pending = pull.receive();
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  await terminate();
  assertOk(elapsedSince(t0) < 2000, `terminate took ${elapsedSince(t0)} ms`);
  assertEquals(await pending, null);
  await Promise.all([pull.closed, push.closed]);
  await terminate();
  // A later socket gets a fresh context.
  const again = new PullSocket();
  again.bind(await tcpEndpoint());
  assertEquals(await again.receive({ timeoutMs: 0 }), null);
  await terminate();
});

Deno.test("zmq: an isolate that never called terminate() unloads without crashing", async () => {
  // Under `deno test --parallel` each module's isolate ends while the process lives on.
  const r = await runChild([
    "test",
    "--no-check",
    ...childFlags(),
    "--parallel",
    supportScript("zmq_unload_case.ts"),
    supportScript("zmq_unload_wait.ts"),
  ]);
  assertEquals(r.code, 0, `child deno test failed (139 = segfault):\n${r.stdout}\n${r.stderr}`);
});

Deno.test("zmq: the async iterator ends when the socket closes", async () => {
  const pull = new PullSocket();
  const push = new PushSocket();
  try {
    const endpoint = await tcpEndpoint();
    pull.bind(endpoint);
    push.connect(endpoint);
    for (const m of ["a", "b", "c"]) await push.send(m);
    const got: string[] = [];
    for await (const m of pull) {
      got.push(decoder.decode(m));
      if (got.length === 3) pull.close();
    }
    assertEquals(got, ["a", "b", "c"]);
  } finally {
    push.close();
    pull.close();
    await Promise.all([push.closed, pull.closed]);
  }
});
