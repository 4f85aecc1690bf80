/** oarnodes, oarnodesetting, oarproperty and oarnotify as real child processes. */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { insertJob, insertResources } from "./support/fixtures.ts";
import { CliEnv } from "./cli_harness_test.ts";

Deno.test("oarnotify: raw commands and queues", async () => {
  await using env = await CliEnv.create();
  let r = await env.run("oarnotify", ["Scheduling"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await env.nextMessage(), '{"cmd": "Scheduling"}');
  r = await env.run("oarnotify", ["rm -rf /"]);
  assertEquals(r.code, 2);
  r = await env.run("oarnotify", ["--add-queue", "night,3,kamelot"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarnotify", ["-d", "night"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarnotify", ["-l"]);
  assertStringIncludes(
    r.stdout,
    "night\n\tpriority = 3\n\tpolicy = kamelot\n\tstate = notActive\n",
  );
  r = await env.run("oarnotify", ["-D"]);
  let q = await env.sql`SELECT DISTINCT state FROM queues`;
  assertEquals(q.map((x) => x.state), ["notActive"]);
  r = await env.run("oarnotify", ["-E"]);
  q = await env.sql`SELECT DISTINCT state FROM queues`;
  assertEquals(q.map((x) => x.state), ["Active"]);
  r = await env.run("oarnotify", ["--remove-queue", "night"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarnotify", ["--remove-queue", "night"]);
  assertEquals(r.code, 1);
  r = await env.run("oarnotify", ["--add-queue", "x';drop table queues;--,1,k"]);
  assertEquals(r.code, 2);
  r = await env.run("oarnotify", ["-E"], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "only root or oar");
  assertEquals((await env.sql`SELECT count(*)::int AS n FROM queues`)[0].n, 3);
});

Deno.test("oarproperty: add, list, rename, delete; names validated", async () => {
  await using env = await CliEnv.create();
  let r = await env.run("oarproperty", ["-a", "core", "-a", "cpu"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarproperty", ["-a", "host", "-c"]);
  assertEquals(r.code, 0, r.stderr);
  const cols = await env.sql`SELECT column_name, data_type FROM information_schema.columns
    WHERE table_name = 'resources' AND column_name IN ('core', 'cpu', 'host') ORDER BY 1`;
  assertEquals(cols.map((c) => [c.column_name, c.data_type]), [
    ["core", "integer"],
    ["cpu", "integer"],
    ["host", "character varying"],
  ]);
  r = await env.run("oarproperty", ["-l"]);
  assertEquals(r.stdout, "core\ncpu\nhost\n");
  r = await env.run("oarproperty", ["--rename", "cpu,socket"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarproperty", ["-d", "socket"]);
  assertEquals(r.code, 0, r.stderr);
  r = await env.run("oarproperty", ["-l"]);
  assertEquals(r.stdout, "core\nhost\n");
  const refusals: [string[], string][] = [
    [["-a", "core"], "already exists"],
    [["-a", "x;drop table jobs"], "bad property name"],
    [["-a", 'a"b'], "bad property name"],
    [["-a", "Upper"], "bad property name"],
    [["-d", "network_address"], "OAR property"],
    [["-d", "nope"], "does not exist"],
    [["--rename", "state,s2"], "OAR property"],
    [["--rename", "core"], "expected OLD,NEW"],
  ];
  for (const [args, msg] of refusals) {
    r = await env.run("oarproperty", args);
    assertOk(r.code !== 0, JSON.stringify(args));
    assertStringIncludes(r.stderr, msg, JSON.stringify(args));
  }
  r = await env.run("oarproperty", ["-a", "gpu"], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  assertOk((await env.sql`SELECT to_regclass('jobs') IS NOT NULL AS ok`)[0].ok);
});

Deno.test("oarnodesetting and oarnodes", async () => {
  await using env = await CliEnv.create();
  await env.sql.unsafe(
    "ALTER TABLE resources ADD COLUMN core integer, ADD COLUMN host varchar(255)",
  );
  const ids = await insertResources(env.sql, ["n1", "n2"], 2);
  // -a with properties
  let r = await env.run("oarnodesetting", ["-a", "-h", "n3", "-p", "core=7", "-p", "host=n3"]);
  assertEquals(r.code, 0, r.stderr);
  const newId = Number(/New resource added: (\d+)/.exec(r.stdout)![1]);
  const [added] = await env.sql`SELECT * FROM resources WHERE resource_id = ${newId}`;
  assertEquals([added.network_address, added.core, added.host, added.state], [
    "n3",
    7,
    "n3",
    "Alive",
  ]);
  // -s by host, by resource, by --sql
  r = await env.run("oarnodesetting", ["-s", "Absent", "-h", "n1"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await env.drain(), ['{"cmd": "ChState"}']);
  r = await env.run("oarnodesetting", ["-s", "dead", "-r", String(ids[2])]);
  r = await env.run("oarnodesetting", ["-s", "Alive", "--sql", "core = 7"]);
  const next = await env.sql`SELECT resource_id, next_state FROM resources ORDER BY resource_id`;
  assertEquals(next.map((n) => n.next_state), ["Absent", "Absent", "Dead", "UnChanged", "Alive"]);
  // -p on existing resources; system properties and unknown ones refused
  r = await env.run("oarnodesetting", ["-h", "n2", "-p", "core=3"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(
    (await env.sql`SELECT DISTINCT core FROM resources WHERE network_address = 'n2'`)
      .map((x) => x.core),
    [3],
  );
  r = await env.run("oarnodesetting", ["-h", "n2", "-p", "state=Dead"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "managed by OAR");
  r = await env.run("oarnodesetting", ["-h", "n2", "-p", "gpu=1"]);
  assertStringIncludes(r.stderr, "unknown property");
  r = await env.run("oarnodesetting", ["-h", "n2", "-p", "core=x'; drop table jobs; --"]);
  assertStringIncludes(r.stderr, "is a number");
  r = await env.run("oarnodesetting", ["--sql", "core = 1; drop table resources", "-s", "Dead"]);
  assertEquals(r.code, 251);
  // maintenance on/off (off ⇒ Alive, docs/differences.md #109), drain
  r = await env.run("oarnodesetting", ["-m", "on", "-h", "n2"]);
  assertEquals(r.code, 0, r.stderr);
  let n2 = await env
    .sql`SELECT next_state, available_upto FROM resources WHERE network_address = 'n2'`;
  assertEquals(n2.map((x) => [x.next_state, x.available_upto]), [["Absent", 0], ["Absent", 0]]);
  r = await env.run("oarnodesetting", ["-m", "off", "-h", "n2"]);
  n2 = await env.sql`SELECT next_state, available_upto FROM resources WHERE network_address = 'n2'`;
  assertEquals(n2.map((x) => [x.next_state, x.available_upto]), [
    ["Alive", 2147483647],
    ["Alive", 2147483647],
  ]);
  r = await env.run("oarnodesetting", ["--drain", "on", "-r", String(ids[0])]);
  assertEquals(
    (await env.sql`SELECT drain FROM resources WHERE resource_id = ${ids[0]}`)[0].drain,
    "YES",
  );
  // refusals
  r = await env.run("oarnodesetting", ["-s", "Sleeping", "-h", "n1"]);
  assertEquals(r.code, 2);
  r = await env.run("oarnodesetting", ["-s", "Alive"]);
  assertEquals(r.code, 2);
  r = await env.run("oarnodesetting", ["-s", "Alive", "-h", "n1"], { OARDO_USER: "alice" });
  assertEquals(r.code, 1);
  r = await env.run("oarnodesetting", ["-m", "maybe", "-h", "n1"]);
  assertEquals(r.code, 2);

  // oarnodes
  await env.sql`UPDATE resources SET state = 'Suspected' WHERE resource_id = ${ids[1]}`;
  const job = await insertJob(env.sql, { state: "Running", resources: [ids[0]] });
  r = await env.run("oarnodes", []);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(
    r.stdout,
    `network_address: n1\nresource_id: ${ids[0]}\nstate: Alive\njobs: ${job.jobId}\n`,
  );
  assertStringIncludes(r.stdout, "core=7");
  r = await env.run("oarnodes", ["n1"]);
  assertEquals(r.stdout.match(/^resource_id:/gm)?.length, 2);
  r = await env.run("oarnodes", ["-s"]);
  assertStringIncludes(r.stdout, `n1\n    ${ids[0]}: Alive\n    ${ids[1]}: Suspected\n`);
  r = await env.run("oarnodes", ["-s", "-J", "n1"]);
  assertEquals(JSON.parse(r.stdout), { n1: { [ids[0]]: "Alive", [ids[1]]: "Suspected" } });
  r = await env.run("oarnodes", ["-l"]);
  assertEquals(r.stdout, "n1\nn2\nn3\n");
  r = await env.run("oarnodes", ["-r", String(ids[2]), "-J"]);
  const j = JSON.parse(r.stdout);
  assertEquals(Object.keys(j), [String(ids[2])]);
  assertEquals(j[String(ids[2])].network_address, "n2");
  r = await env.run("oarnodes", ["--sql", "core = 7", "-l"]);
  assertEquals(r.stdout, "n3\n");
  r = await env.run("oarnodes", ["--sql", "core = (select 1)"]);
  assertEquals(r.code, 251);
  // events of a host, with and without a date
  const [ev] = await env.sql`INSERT INTO event_logs (type, job_id, date, description)
    VALUES ('LOG_SUSPECTED', 0, EXTRACT(EPOCH FROM now())::int, 'n1 suspected') RETURNING event_id`;
  await env.sql`INSERT INTO event_log_hostnames (event_id, hostname) VALUES (${ev.event_id}, 'n1')`;
  r = await env.run("oarnodes", ["-e", "n1"]);
  assertStringIncludes(r.stdout, "LOG_SUSPECTED: n1 suspected");
  r = await env.run("oarnodes", ["-e", "2001-01-01 00:00:00", "n1"]);
  assertStringIncludes(r.stdout, "LOG_SUSPECTED");
  r = await env.run("oarnodes", ["-e", "2099-01-01 00:00:00", "n1"]);
  assertEquals(r.stdout, "");
});
