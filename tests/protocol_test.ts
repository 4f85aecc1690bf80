import { assertEquals, assertOk } from "./support/assert.ts";
import {
  COMMAND_REQUEST_MAX_BYTES,
  commanderInvocation,
  DESCRIPTOR_HEAD_MAX_BYTES,
  encodeAlmightyMessage,
  encodeCommanderMessage,
  encodeGretaMessage,
  encodeOarexecReport,
  encodeStandbyDone,
  encodeStandbyGo,
  encodeStandbyRunning,
  JOB_COMMAND_MAX_BYTES,
  LineSplitter,
  parseAlmightyMessage,
  parseCommanderMessage,
  parseCommandRequest,
  parseGretaMessage,
  parseInfoType,
  parseJobTypes,
  parseLegacyLine,
  parseOarexecArgs,
  parseOarexecDescriptor,
  parseStandbyLine,
  pyJson,
  readLines,
  STANDBY_GO,
} from "../lib/protocol/mod.ts";

Deno.test("encoders are byte-compatible with OAR 3 (Python json.dumps layout)", () => {
  assertEquals(encodeAlmightyMessage({ cmd: "Qsub" }), '{"cmd": "Qsub"}');
  assertEquals(
    encodeCommanderMessage({ job_id: 10, cmd: "OAREXEC", args: ["2", "N", "34"] }),
    '{"job_id": 10, "cmd": "OAREXEC", "args": ["2", "N", "34"]}',
  );
  assertEquals(
    encodeCommanderMessage({ job_id: 42, cmd: "OARRUN", args: [] }),
    '{"job_id": 42, "cmd": "OARRUN", "args": []}',
  );
  assertEquals(
    encodeGretaMessage({ cmd: "WAKEUP", nodes: ["node1", "node2"] }),
    '{"cmd": "WAKEUP", "nodes": ["node1", "node2"]}',
  );
  assertEquals(encodeGretaMessage({ cmd: "CHECK", nodes: [] }), '{"cmd": "CHECK"}');
  assertEquals(pyJson({ s: "é\u2603" }), '{"s": "\\u00e9\\u2603"}');
  assertEquals(
    encodeOarexecReport({ jobId: 10, oarexecExit: 0, scriptExit: 25344, challenge: "abc" }),
    "OAREXEC_10_0_25344_abc\n",
  );
  assertEquals(
    encodeOarexecReport({ jobId: 3, oarexecExit: 50, scriptExit: null, challenge: "x" }),
    "OAREXEC_3_50_N_x\n",
  );
});

Deno.test("legacy lines are routed as the appendice proxy does (docs/modules.md §2)", () => {
  assertEquals(parseLegacyLine("OAREXEC_10_2_N_34\n"), {
    ok: true,
    value: { kind: "commander", message: { job_id: 10, cmd: "OAREXEC", args: ["2", "N", "34"] } },
  });
  assertEquals(parseLegacyLine("OARRUNJOB_42"), {
    ok: true,
    value: { kind: "commander", message: { job_id: 42, cmd: "OARRUNJOB", args: [] } },
  });
  assertEquals(parseLegacyLine("LEONEXTERMINATE_7 "), {
    ok: true,
    value: { kind: "commander", message: { job_id: 7, cmd: "LEONEXTERMINATE", args: [] } },
  });
  // Unanchored search, as in OAR.
  const prefixed = parseLegacyLine("junk OARRUNJOB_5");
  assertOk(prefixed.ok && prefixed.value.kind === "commander");
  assertEquals(parseLegacyLine("Qsub"), {
    ok: true,
    value: { kind: "almighty", message: { cmd: "Qsub" } },
  });
  assertEquals(parseLegacyLine("").ok, false);
  assertEquals(parseLegacyLine("   \r\n").ok, false);
  assertEquals(parseLegacyLine("Qsub\u0000x").ok, false);
  assertEquals(parseLegacyLine("x".repeat(5000)).ok, false);
  assertEquals(parseLegacyLine("OARRUNJOB_99999999999999999999").ok, false);
});

Deno.test("OAREXEC args become a report; bad ones are refused", () => {
  assertEquals(parseOarexecArgs(10, ["2", "N", "34"]), {
    ok: true,
    value: { jobId: 10, oarexecExit: 2, scriptExit: null, challenge: "34" },
  });
  assertEquals(parseOarexecArgs(1, ["0", "256", "a", "b"]), {
    ok: true,
    value: { jobId: 1, oarexecExit: 0, scriptExit: 256, challenge: "a_b" },
  });
  assertEquals(parseOarexecArgs(1, ["x", "N", "c"]).ok, false);
  assertEquals(parseOarexecArgs(1, ["0", "-1", "c"]).ok, false);
  assertEquals(parseOarexecArgs(1, ["0"]).ok, false);
});

Deno.test("JSON messages parse to typed values or descriptive errors", () => {
  assertEquals(parseAlmightyMessage('{"cmd": "Qdel", "job_id": 3, "args": []}'), {
    ok: true,
    value: { cmd: "Qdel", job_id: 3, args: [] },
  });
  const noCmd = parseAlmightyMessage('{"command": "Qsub"}');
  assertOk(!noCmd.ok && noCmd.error.includes("cmd"));
  assertEquals(parseAlmightyMessage("[1,2]").ok, false);
  assertEquals(parseAlmightyMessage(new Uint8Array([0xff, 0xfe])).ok, false);
  assertEquals(parseCommanderMessage('{"job_id": 7, "cmd": "LEONEXTERMINATE"}'), {
    ok: true,
    value: { job_id: 7, cmd: "LEONEXTERMINATE", args: [] },
  });
  assertEquals(parseCommanderMessage('{"job_id": -1, "cmd": "OARRUN", "args": []}').ok, false);
  assertEquals(parseCommanderMessage('{"job_id": 1, "cmd": "rm -rf", "args": []}').ok, false);
  assertEquals(parseCommanderMessage('{"job_id": 1.5, "cmd": "OARRUN", "args": []}').ok, false);
  assertEquals(parseCommanderMessage('{"job_id": 1, "cmd": "OARRUN", "args": [1]}').ok, false);
  assertEquals(parseGretaMessage('{"cmd": "HALT", "nodes": ["n1"]}'), {
    ok: true,
    value: { cmd: "HALT", nodes: ["n1"] },
  });
  assertEquals(parseGretaMessage('{"cmd": "whatever"}'), {
    ok: true,
    value: { cmd: "CHECK", nodes: [] },
  });
  assertEquals(parseGretaMessage('{"cmd": "whatever", "nodes": ["n1"]}').ok, false);
  assertEquals(parseGretaMessage('{"cmd": "HALT", "nodes": ["n1; reboot"]}').ok, false);
  assertEquals(commanderInvocation({ job_id: 4, cmd: "LEONEXTERMINATE", args: [] }), {
    module: "leon",
    args: ["4"],
  });
  assertEquals(commanderInvocation({ job_id: 4, cmd: "OAREXEC", args: ["0", "N", "c"] }), {
    module: "bipbip",
    args: ["4", "0", "N", "c"],
  });
});

Deno.test("info_type and job types", () => {
  assertEquals(parseInfoType("frontend:4242"), {
    ok: true,
    value: { host: "frontend", port: 4242 },
  });
  assertEquals(parseInfoType("frontend").ok, false);
  assertEquals(parseInfoType("a b:12").ok, false);
  assertEquals(parseInfoType("host:70000").ok, false);
  assertEquals(
    parseJobTypes(["besteffort", "timesharing=user,*", "token:lic=2", "token:x=1", "inner=12"]),
    { besteffort: true, timesharing: "user,*", token: { lic: 2, x: 1 }, inner: "12" },
  );
});

Deno.test("line splitter: several messages per connection, messages split across packets", () => {
  const enc = new TextEncoder();
  const s = new LineSplitter(16);
  assertEquals(s.push(enc.encode("Qsub\nTe")).lines, ["Qsub"]);
  assertEquals(s.push(enc.encode("rm\r\nOAR")).lines, ["Term"]);
  assertEquals(s.push(enc.encode("RUNJOB_1\n")).lines, ["OARRUNJOB_1"]);
  // A multi-byte character split across packets survives.
  const e = enc.encode("é\n");
  assertEquals(s.push(e.slice(0, 1)).lines, []);
  assertEquals(s.push(e.slice(1)).lines, ["é"]);
  // An oversized line is dropped with an error, and the stream recovers after its newline.
  const big = s.push(enc.encode("x".repeat(40)));
  assertEquals(big.lines, []);
  const after = s.push(enc.encode("yyy\nQdel\n"));
  assertEquals(after.lines, ["Qdel"]);
  assertEquals(after.errors.length, 1);
  s.push(enc.encode("tail"));
  assertEquals(s.end(), ["tail"]);
});

Deno.test("descriptor validation", () => {
  const good = {
    job_id: 1,
    array_id: 1,
    array_index: 1,
    stdout_file: "OAR.%jobid%.stdout",
    stderr_file: "OAR.%jobid%.stderr",
    launching_directory: "/home/u",
    job_env: null,
    node_file_db_fields: "network_address",
    node_file_db_fields_distinct_values: "resource_id",
    user: "u",
    job_user: "u",
    types: {},
    name: null,
    project: "",
    reservation: "None",
    walltime_seconds: 60,
    command: "true",
    challenge: "c",
    almighty_hostname: "localhost",
    almighty_port: 6666,
    checkpoint_signal: 12,
    debug_mode: 0,
    mode: "PASSIVE",
    pro_epi_timeout: 60,
    prologue: "",
    epilogue: "",
    tmp_directory: "/tmp",
    detach_oarexec: 1,
    cpuset_full_path: "",
    resources: [{ resource_id: 1, network_address: "n1" }],
  };
  assertOk(parseOarexecDescriptor(JSON.stringify(good)).ok);
  // The longest command oarsub accepts fits what oarexec reads (once, a 70 KB command did not).
  const longest = { ...good, command: "x".repeat(JOB_COMMAND_MAX_BYTES) };
  assertOk(parseOarexecDescriptor(JSON.stringify(longest)).ok);
  assertOk(JSON.stringify(longest).length < DESCRIPTOR_HEAD_MAX_BYTES);
  const bad = parseOarexecDescriptor(JSON.stringify({ ...good, job_id: "1" }));
  assertOk(!bad.ok && bad.error.includes("job_id"));
  assertEquals(parseOarexecDescriptor(JSON.stringify({ ...good, mode: "X" })).ok, false);
  assertEquals(parseOarexecDescriptor(JSON.stringify({ ...good, resources: [1] })).ok, false);
});

/** A small seeded PRNG so a failing case can be replayed from the printed seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [
  '{"cmd": "Qsub"}',
  '{"job_id": 10, "cmd": "OAREXEC", "args": ["2", "N", "34"]}',
  '{"cmd": "HALT", "nodes": ["n1"]}',
  "OAREXEC_10_2_N_34",
  "Qsub -I",
];

Deno.test("property: random and mutated bytes never make a parser throw", () => {
  const seed = Date.now() % 1_000_000;
  const rand = rng(seed);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const parsers: ((b: Uint8Array) => unknown)[] = [
    parseAlmightyMessage,
    parseCommanderMessage,
    parseGretaMessage,
    parseOarexecDescriptor,
    (b) => parseLegacyLine(dec.decode(b)),
    (b) => new LineSplitter().push(b),
  ];
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(rand() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
    } else {
      bytes = enc.encode(SEEDS[i % SEEDS.length]);
      const n = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < n && bytes.length > 0; k++) {
        bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
    }
    for (const p of parsers) {
      try {
        p(bytes);
      } catch (e) {
        throw new Error(
          `seed ${seed}, case ${i}: parser threw on ${JSON.stringify([...bytes])}: ${e}`,
        );
      }
    }
  }
});

Deno.test("standby lines: go, running, and done with the run's exit code and whether more follow", () => {
  assertEquals(encodeStandbyGo(), `${STANDBY_GO}\n`);
  // Each line starts on a line of its own, whatever the module printed before without a newline.
  const lines = (text: string) => text.split("\n").filter((l) => l !== "");
  assertEquals(encodeStandbyRunning().startsWith("\n"), true);
  assertEquals(lines(encodeStandbyRunning()).map(parseStandbyLine), [{ kind: "running" }]);
  for (const [code, last] of [[0, false], [1, false], [2, true], [255, true]] as const) {
    const text = encodeStandbyDone(code, last);
    assertEquals(text.startsWith("\n") && text.endsWith("\n"), true);
    assertEquals(lines(text).map(parseStandbyLine), [{ kind: "done", code, more: !last }]);
  }
  // What a process exit would have made of a code out of range; 1 for no integer at all.
  for (const [code, exit] of [[256, 0], [257, 1], [-1, 255], [NaN, 1], [1.5, 1]]) {
    assertEquals(lines(encodeStandbyDone(code)).map(parseStandbyLine), [
      { kind: "done", code: exit, more: true },
    ]);
  }
  // Anything else the module prints is not a standby line.
  for (
    const other of [
      "",
      "go",
      "OAR_STANDBY_DONE",
      "OAR_STANDBY_DONE 256",
      "OAR_STANDBY_DONE -1",
      "OAR_STANDBY_DONE 1 last more",
      " OAR_STANDBY_DONE 0",
      "progressOAR_STANDBY_DONE 0",
      "OAR_STANDBY_DONE 0x1",
      "OAR_STANDBY_RUNNING 1",
    ]
  ) {
    assertEquals(parseStandbyLine(other), null, other);
  }
});

Deno.test("readLines: lines across chunks, the last without its newline, overlong ones skipped", async () => {
  const chunks = ["go\nOAR_STAN", "DBY_DONE 0\n", "x".repeat(40), "\nlast"];
  const stream = ReadableStream.from(chunks.map((c) => new TextEncoder().encode(c)));
  const got: string[] = [];
  for await (const l of readLines(stream, 16)) got.push(l);
  assertEquals(got, ["go", "OAR_STANDBY_DONE 0", "last"]);
});

Deno.test("command requests: what the command server accepts from a caller", () => {
  const good = {
    command: "oarsub",
    args: ["-l", "core=1", "true"],
    cwd: "/home/alice",
    env: { OARDO_USER: "bob", LD_PRELOAD: "/tmp/x.so" },
    files: { "./job.sh": "#!/bin/sh\n", missing: null },
    hostname: "front1.example.org",
    infoType: null,
  };
  const r = parseCommandRequest(JSON.stringify(good));
  assertOk(r.ok);
  // Only the variables that change what a command does are kept.
  assertEquals(r.value.env, { OARDO_USER: "bob" });
  for (
    const [bad, why] of [
      [{ ...good, hostname: "a\nb" }, "hostname"],
      [{ ...good, command: "../oarsub" }, "command"],
      [{ ...good, args: ["x", 1] }, "args"],
      [{ ...good, cwd: "relative" }, "cwd"],
      [{ ...good, files: { a: 1 } }, "files"],
    ] as const
  ) {
    const p = parseCommandRequest(JSON.stringify(bad));
    assertOk(!p.ok && p.error.includes(why), JSON.stringify(p));
  }
  assertEquals(parseCommandRequest("not json").ok, false);
  assertEquals(parseCommandRequest("x".repeat(COMMAND_REQUEST_MAX_BYTES + 1)).ok, false);
});
