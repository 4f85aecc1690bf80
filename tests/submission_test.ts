/** oarsub's parsers, in-process: -l grammar, walltime, types, dependencies, notify, -r, #OAR. */
import type { ColumnSet } from "../lib/properties/expr.ts";
import { toSql } from "../lib/properties/expr.ts";
import {
  checkNotify,
  checkOutputFile,
  checkTypes,
  parseDependency,
  parseReservationDate,
  SubmissionError,
} from "../lib/submission/checks.ts";
import {
  ALL,
  BEST,
  parseResourceRequest,
  ResourceRequestError,
} from "../lib/submission/resource_request.ts";
import { scanScriptText } from "../lib/submission/scan_script.ts";
import { formatDuration, formatTimedelta, parseWalltime } from "../lib/submission/walltime.ts";
import { groupPropertyWithType, jobMessage, outputName } from "../lib/submission/submit.ts";
import { assertEquals, assertStringIncludes, assertThrows } from "./support/assert.ts";

const COLS: ColumnSet = new Map(
  [
    ["resource_id", "number"],
    ["network_address", "text"],
    ["type", "text"],
    ["cpu", "number"],
    ["core", "number"],
    ["switch", "text"],
    ["licence", "text"],
    ["lic_type", "text"],
  ] as const,
);

const DEF = { defaults: "/resource_id=1" };

function req(text: string) {
  const m = parseResourceRequest(text, COLS, DEF);
  return {
    walltime: m.walltime,
    groups: m.groups.map((g) => ({
      property: g.property ? toSql(g.property) : null,
      resources: g.resources.map((r) => `${r.resource}=${r.value}`).join("/"),
    })),
  };
}

Deno.test("-l: hierarchy, nodes alias, groups, walltime, ALL/BEST", () => {
  assertEquals(req("/nodes=2/core=4"), {
    walltime: null,
    groups: [{ property: null, resources: "network_address=2/core=4" }],
  });
  assertEquals(req("nodes=1,walltime=1:30:00").walltime, 5400);
  assertEquals(req("walltime=2"), {
    walltime: 7200,
    groups: [{ property: null, resources: "resource_id=1" }],
  });
  assertEquals(
    req("/switch=2/nodes=10+{lic_type = 'mathlab'}/licence=2, walltime = 60"),
    {
      walltime: 216000,
      groups: [
        { property: null, resources: "switch=2/network_address=10" },
        { property: "lic_type = 'mathlab'", resources: "licence=2" },
      ],
    },
  );
  // Separators inside the braces' strings are characters of the string.
  assertEquals(
    req("{network_address = 'a+b/c,d}'}/core=1").groups[0].property,
    "network_address = 'a+b/c,d}'",
  );
  assertEquals(
    req("/nodes=ALL/core=BEST").groups[0].resources,
    `network_address=${ALL}/core=${BEST}`,
  );
  // The values the scheduler reads (docs/modules.md §11); BESTHALF is refused (docs/differences.md
  // #57).
  assertEquals([ALL, BEST], [-1, -2]);
  assertThrows(() => req("/nodes=BESTHALF"), ResourceRequestError, "BESTHALF is not supported");
  assertEquals(
    parseResourceRequest("/nodes=1", COLS, { ...DEF, nodesAlias: "cpu" }).groups[0].resources[0]
      .resource,
    "cpu",
  );
});

Deno.test("-l: malformed requests are refused with a reason", () => {
  const bad: [string, string][] = [
    ["/nodes=0", "bad value"],
    ["/nodes=-1", "bad value"],
    ["/nodes=two", "bad value"],
    ["/nodes", "expected resource=value"],
    ["/foo=1", "unknown resource type"],
    ["/nodes=1/nodes=2", "given twice"],
    ["/nodes=1,walltime=abc", "bad walltime"],
    ["/nodes=1,walltime=0", "bad walltime"],
    ["/nodes=1,walltime=1:2:3:4", "bad walltime"],
    ["/nodes=1,walltime=1,walltime=2", "walltime given twice"],
    ["/nodes=1,core=2", "only walltime"],
    ["{cpu=1/nodes=1", "unbalanced"],
    ["cpu=1}/nodes=1", "unbalanced"],
    ["{nope=1}/nodes=1", "unknown property"],
    ["{cpu=1; drop table jobs}/nodes=1", "';' is not allowed"],
    ["{cpu=1}", "no resource=value"],
    ["/nodes=1+", "no resource=value"],
    ["/nodes=1/{cpu=1}", "must open its group"],
    ["/nodes=1,", "empty element"],
    ["/walltime=1", "walltime must come after"],
  ];
  for (const [text, expected] of bad) {
    const e = assertThrows(() => parseResourceRequest(text, COLS, DEF), ResourceRequestError);
    assertStringIncludes(e.message, expected, text);
  }
});

Deno.test("walltime and durations", () => {
  assertEquals(parseWalltime("1"), 3600);
  assertEquals(parseWalltime("1:1"), 3660);
  assertEquals(parseWalltime("0:2:10"), 130);
  assertEquals(parseWalltime("0:0:1"), 1);
  assertEquals(formatDuration(5400), "1:30:00");
  assertEquals(formatDuration(59), "0:00:59");
  assertEquals(formatTimedelta(90061), "1 day, 1:01:01");
  assertEquals(formatTimedelta(-1), "-1 day, 23:59:59");
  assertEquals(formatTimedelta(0), "0:00:00");
});

Deno.test("types, dependencies, notify, output names, reservation dates", () => {
  assertEquals(
    checkTypes([" besteffort", "timesharing=user,*", "token:lic=2", "inner=12", "deploy"]),
    ["besteffort", "timesharing=user,*", "token:lic=2", "inner=12", "deploy"],
  );
  for (const t of ["a b", "x;y", "timesharing=foo", "inner=abc", "$(id)", "t='x'"]) {
    assertThrows(() => checkTypes([t]), SubmissionError, undefined);
  }
  assertEquals(parseDependency("12"), { jobId: 12, minStartShift: "", maxStartShift: "" });
  assertEquals(parseDependency("12,[-10,]20"), {
    jobId: 12,
    minStartShift: "[-10",
    maxStartShift: "]20",
  });
  assertThrows(() => parseDependency("x"), SubmissionError);
  checkNotify("mail:me@example.org");
  checkNotify("[END,ERROR]exec:/bin/notify arg");
  assertEquals(assertThrows(() => checkNotify("sms:123"), SubmissionError).code, -6);
  assertEquals(assertThrows(() => checkNotify("exec:/bin/x;rm -rf /"), SubmissionError).code, 16);
  checkOutputFile("stdout", "out/%jobid%.log");
  assertEquals(assertThrows(() => checkOutputFile("stdout", "a$(id)"), SubmissionError).code, 12);
  assertEquals(assertThrows(() => checkOutputFile("stderr", "a;b"), SubmissionError).code, -13);
  assertEquals(outputName(null, null, "stdout"), "OAR.%jobid%.stdout");
  assertEquals(outputName(null, "n1", "stderr"), "OAR.n1.%jobid%.stderr");
  assertEquals(outputName("%jobname%-%jobid%.o", "n1", "stdout"), "n1-%jobid%.o");
  const t = parseReservationDate("2030-01-02 03:04:05");
  assertEquals(t, Math.floor(new Date(2030, 0, 2, 3, 4, 5).getTime() / 1000));
  assertEquals(assertThrows(() => parseReservationDate("tomorrow"), SubmissionError).code, 7);
  assertEquals(
    assertThrows(() => parseReservationDate("2030-02-30 00:00:00"), SubmissionError).code,
    7,
  );
});

Deno.test("type default and the job message", () => {
  const m = parseResourceRequest("{cpu=1}/nodes=1+{type='licence'}/licence=1", COLS, DEF);
  assertEquals(
    toSql(groupPropertyWithType(m.groups[0].property, null)!),
    "cpu = 1 AND type = 'default'",
  );
  assertEquals(toSql(groupPropertyWithType(m.groups[1].property, null)!), "type = 'licence'");
  assertEquals(toSql(groupPropertyWithType(null, null)!), "type = 'default'");
  const base = {
    user: "u",
    commands: ["x"],
    jobType: "PASSIVE" as const,
    infoType: null,
    queue: null,
    project: "p1",
    name: "n",
    properties: null,
    moldables: [],
    types: ["besteffort", "idempotent"],
    dependencies: [],
    launchingDirectory: "/",
    stdout: null,
    stderr: null,
    notify: null,
    checkpoint: 0,
    signal: 12,
    hold: false,
    reservationDate: null,
    initialRequest: "",
    defaultWalltime: 7200,
  };
  assertEquals(
    jobMessage(base, "admin", 4, 3600),
    "R=4,W=1:00:00,J=B,N=n,Q=admin,P=p1,T=besteffort|idempotent",
  );
});

Deno.test("#OAR directives become options", () => {
  const args = scanScriptText(
    "#!/bin/sh\n#OAR -l /nodes=2,walltime=1\n#OAR --name my job\n#OAR --hold\n#OAR -t besteffort\n" +
      "echo '#OAR -q ignored'\n",
  );
  assertEquals(args, [
    "-l",
    "/nodes=2,walltime=1",
    "--name",
    "my job",
    "--hold",
    "-t",
    "besteffort",
  ]);
  assertEquals(assertThrows(() => scanScriptText("#OAR --bogus 1\n"), SubmissionError).code, -72);
  assertEquals(assertThrows(() => scanScriptText("#OAR --hold yes\n"), SubmissionError).code, -72);
});
