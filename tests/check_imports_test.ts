/**
 * tools/check_imports.ts: each rule reports what breaks it on a small graph, and the repository
 * keeps them all.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import {
  checkImports,
  type ImportGraph,
  loadGraph,
  repositoryFiles,
  RULES,
} from "../tools/check_imports.ts";

function graph(edges: Record<string, string[]>): ImportGraph {
  return new Map(Object.entries(edges));
}

/** The layering rules alone: these graphs have no node program. */
const LAYERING_ONLY = { ...RULES, nodeEntries: [], userSideEntries: [] };

Deno.test("check_imports: a cycle is reported as a path", () => {
  const report = checkImports(
    graph({
      "lib/a/x.ts": ["lib/a/y.ts"],
      "lib/a/y.ts": ["lib/b/z.ts"],
      "lib/b/z.ts": ["lib/a/x.ts", "node:path"],
      "lib/b/w.ts": ["lib/b/z.ts"],
    }),
    LAYERING_ONLY,
  );
  assertEquals(report.cycles.map((c) => c.path), [
    ["lib/a/x.ts", "lib/a/y.ts", "lib/b/z.ts", "lib/a/x.ts"],
  ]);
  assertEquals(report.imports, []);
});

Deno.test("check_imports: lib/ importing modules/, cli/ or tests/ is reported", () => {
  const report = checkImports(
    graph({
      "lib/job/end.ts": ["modules/leon/leon.ts", "lib/runtime/config.ts"],
      "lib/cli/frame.ts": ["cli/oarsub/main.ts"],
      "lib/db/client.ts": ["tests/support/testdb.ts"],
      "modules/leon/leon.ts": [],
      "cli/oarsub/main.ts": [],
      "lib/runtime/config.ts": [],
      "tests/support/testdb.ts": [],
    }),
    LAYERING_ONLY,
  );
  assertEquals(report.cycles, []);
  assertEquals(report.imports.map((i) => i.split("  ")[0]), [
    "lib/job/end.ts -> modules/leon/leon.ts",
    "lib/cli/frame.ts -> cli/oarsub/main.ts",
    "lib/db/client.ts -> tests/support/testdb.ts",
  ]);
});

Deno.test("check_imports: one module or command importing another's folder is reported", () => {
  const report = checkImports(
    graph({
      "modules/bipbip/main.ts": ["modules/bipbip/batch.ts", "modules/leon/leon.ts"],
      "modules/bipbip/batch.ts": ["lib/job/end.ts"],
      "modules/leon/leon.ts": ["cli/oardel/main.ts"],
      "cli/oardel/main.ts": ["cli/oarstat/main.ts", "tools/run.ts"],
      "cli/oarstat/main.ts": [],
      "tools/run.ts": ["modules/leon/leon.ts"],
      "lib/job/end.ts": [],
    }),
    LAYERING_ONLY,
  );
  assertEquals(report.imports.map((i) => i.split("  ")[0]), [
    "modules/bipbip/main.ts -> modules/leon/leon.ts",
    "modules/leon/leon.ts -> cli/oardel/main.ts",
    "cli/oardel/main.ts -> cli/oarstat/main.ts",
    "cli/oardel/main.ts -> tools/run.ts",
  ]);
});

Deno.test("check_imports: the node program reaching the database is reported with its chain", () => {
  const edges = {
    "modules/oarexec/main.ts": ["modules/oarexec/oarexec.ts"],
    "modules/oarexec/oarexec.ts": ["lib/runtime/spawn.ts", "lib/exec/run.ts"],
    "lib/runtime/spawn.ts": ["lib/permissions/mod.ts"],
    "lib/permissions/mod.ts": ["lib/db/target.ts"],
    "lib/db/target.ts": [],
    "lib/exec/run.ts": ["npm:postgres"],
    "cli/oarstat/user.ts": ["lib/job/states.ts"],
    "lib/job/states.ts": [],
  };
  const report = checkImports(graph(edges), { ...RULES, userSideEntries: [] });
  assertEquals(report.imports, [
    "lib/runtime/spawn.ts -> lib/permissions/mod.ts  (node program reaches server-side code: " +
    "modules/oarexec/main.ts -> modules/oarexec/oarexec.ts -> lib/runtime/spawn.ts -> " +
    "lib/permissions/mod.ts)",
    "lib/exec/run.ts -> npm:postgres  (node program reaches server-side code: " +
    "modules/oarexec/main.ts -> modules/oarexec/oarexec.ts -> lib/exec/run.ts -> npm:postgres)",
  ]);
  // A user-side entry is held to the same rule, once listed.
  const userSide = checkImports(graph(edges), {
    ...RULES,
    nodeEntries: [],
    userSideEntries: ["cli/oarstat/user.ts"],
  });
  assertEquals(userSide.imports.length, 1);
  assertOk(userSide.imports[0].startsWith("cli/oarstat/user.ts -> lib/job/states.ts"));
});

Deno.test("check_imports: the repository has no cycle and respects its layering", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const files = await repositoryFiles(root);
  const { graph, errors } = await loadGraph(root, files);
  assertEquals(errors, []);
  assertOk(graph.has("modules/oarexec/main.ts") && graph.has("lib/db/client.ts"));
  assertEquals(checkImports(graph), { cycles: [], imports: [] });
});
