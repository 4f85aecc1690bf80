/**
 * What an interactive oarsub makes of the lines it receives, and the listener it receives them
 * on (a real socket, senders as the meta-scheduler and bipbip write: one connection each, one
 * or several lines, possibly in pieces).
 */
import { assertEquals } from "./support/assert.ts";
import { REFUSED_ADDRESS } from "./support/ports.ts";
import { waitFor } from "./support/proc.ts";
import { InteractiveMessages } from "../lib/protocol/mod.ts";
import { notifyOarsub } from "../lib/job/oarsub_notify.ts";
import { NotificationListener } from "../cli/oarsub/listener.ts";
import { classifyNotification, endsWait, NotificationFilter } from "../cli/oarsub/notifications.ts";

Deno.test("classifyNotification: the words that end the wait, and the others", () => {
  assertEquals(classifyNotification("GOOD JOB"), { kind: "good" });
  assertEquals(classifyNotification("GOOD JOB\r"), { kind: "good" });
  assertEquals(classifyNotification("BAD JOB"), { kind: "bad" });
  assertEquals(classifyNotification("JOB_KILLED"), { kind: "killed" });
  assertEquals(classifyNotification("JOB KILL"), { kind: "killed" });
  assertEquals(classifyNotification("ERROR: some resources did not respond"), {
    kind: "error",
    text: "ERROR: some resources did not respond",
  });
  assertEquals(classifyNotification("Starting..."), { kind: "info", text: "Starting..." });
  const p = InteractiveMessages.startPrediction(
    "2026-01-01 10:00:00",
    "2026-01-01 11:00:00",
    "R=4",
  );
  assertEquals(classifyNotification(p), {
    kind: "prediction",
    text: p,
    key: " Start prediction: 2026-01-01 11:00:00 (R=4)",
  });
  // Near misses are only shown.
  assertEquals(classifyNotification("GOOD JOBS").kind, "info");
  assertEquals(classifyNotification(" GOOD JOB").kind, "info");
  assertEquals(classifyNotification("bad job").kind, "info");
  for (
    const [line, ends] of [["GOOD JOB", true], ["BAD JOB", true], ["JOB_KILLED", true]] as const
  ) {
    assertEquals(endsWait(classifyNotification(line)), ends);
  }
  assertEquals(endsWait(classifyNotification("ERROR")), true);
  assertEquals(endsWait(classifyNotification("Starting...")), false);
  assertEquals(endsWait(classifyNotification("[x] Start prediction: y (z)")), false);
});

Deno.test("NotificationFilter: a prediction is shown again only when it changed", () => {
  const f = new NotificationFilter();
  const show = (l: string) => f.show(classifyNotification(l));
  assertEquals(
    show("[10:00:00] Start prediction: 11:00 (R=1)"),
    "[10:00:00] Start prediction: 11:00 (R=1)",
  );
  assertEquals(show("[10:00:30] Start prediction: 11:00 (R=1)"), null);
  assertEquals(
    show("[10:01:00] Start prediction: 11:05 (R=1)"),
    "[10:01:00] Start prediction: 11:05 (R=1)",
  );
  assertEquals(show("Starting..."), "Starting...");
  assertEquals(show("GOOD JOB"), null);
  assertEquals(show("BAD JOB"), "BAD JOB");
  assertEquals(show("JOB_KILLED"), "the job was killed before it started");
});

async function send(port: number, chunks: string[]): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  for (const c of chunks) {
    await conn.write(new TextEncoder().encode(c));
    await new Promise((r) => setTimeout(r, 10));
  }
  conn.close();
}

Deno.test("NotificationListener: lines of every connection, split or joined, in order", async () => {
  const listener = NotificationListener.open("127.0.0.1");
  const got: string[] = [];
  const reading = (async () => {
    for await (const l of listener.lines()) got.push(l);
  })();
  try {
    assertEquals(listener.infoType, `127.0.0.1:${listener.port}`);
    // The meta-scheduler's error: message then BAD JOB on one connection.
    assertEquals(await notifyOarsub(listener.infoType, ["No resource", "BAD JOB"]), true);
    await waitFor("two lines", () => got.length === 2, 5000);
    // A line in pieces, and a last line without its newline.
    await send(listener.port, ["GOO", "D J", "OB\nStart", "ing..."]);
    await waitFor("four lines", () => got.length === 4, 5000);
    assertEquals(got, ["No resource", "BAD JOB", "GOOD JOB", "Starting..."]);
  } finally {
    listener.close();
    await reading;
  }
  // Closed: the lines ended (awaited above) and nothing more reaches them. Whether a
  // sender to the old port is refused cannot be asserted here: a test running beside
  // this one may have been given the freed port by the kernel (a CI run saw it).
  await notifyOarsub(`127.0.0.1:${listener.port}`, ["GOOD JOB"]);
  assertEquals(got.length, 4);
});

Deno.test("notifyOarsub: a port nobody listens on is false", async () => {
  assertEquals(await notifyOarsub(REFUSED_ADDRESS, ["GOOD JOB"]), false);
});

Deno.test("notifyOarsub: refuses an info_type that is not host:port", async () => {
  assertEquals(await notifyOarsub("vm:", ["GOOD JOB"]), false);
  assertEquals(await notifyOarsub(null, ["GOOD JOB"]), false);
  assertEquals(await notifyOarsub("a b:12", ["GOOD JOB"]), false);
});
