/**
 * `deno task check:imports`: the repository's import graph obeys its layout (docs/architecture.md
 * §1). Exits 1, printing each offending import as `from -> to` and each cycle as a path, when:
 *
 * - the repository's own files import each other in a cycle (tests included);
 * - a file under lib/ imports modules/, cli/, tools/, tests/ or bench/;
 * - a file under modules/<a>/ imports modules/<b>/ (b ≠ a), cli/, tools/, tests/ or bench/;
 * - a file under cli/<a>/ imports modules/, tools/, tests/, bench/ or cli/<b>/ (b ≠ a);
 * - the node program (NODE_ENTRIES) or a user command's user-side part (USER_SIDE_ENTRIES)
 *   reaches server-side code (SERVER_SIDE).
 *
 * Every import counts, `import type` and dynamic imports included. The graph comes from one
 * `deno info --json` call over a temporary entry importing every .ts file of mod.ts, modules/,
 * cli/, lib/, tools/, bench/ and tests/.
 */
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * The user-side parts of the user commands (repository-relative entries): what runs as the user,
 * with the user's rights, and must reach no server-side code: their privileged half runs in the
 * command server (modules/command_server/).
 */
export const USER_SIDE_ENTRIES: readonly string[] = [
  "cli/oarsub/main.ts",
  "cli/oarstat/main.ts",
  "cli/oardel/main.ts",
  "cli/oarhold/main.ts",
  "cli/oarresume/main.ts",
  "cli/oarnodes/main.ts",
  "cli/oarnodesetting/main.ts",
  "cli/oarproperty/main.ts",
  "cli/oarnotify/main.ts",
];

/** The node program: what runs on the compute nodes. */
export const NODE_ENTRIES: readonly string[] = ["modules/oarexec/main.ts"];

/** Server-side code: database access, the permission table, launching, jobs and resources. */
export const SERVER_SIDE: readonly RegExp[] = [
  /^lib\/db\//,
  /^lib\/permissions\//,
  /^lib\/launch\//,
  /^lib\/job\//,
  /^lib\/resource\//,
  /^lib\/transport\/zmq[^/]*\.ts$/,
  /^npm:postgres$/,
];

/** Folders scanned for .ts files, and top-level files, relative to the repository. */
const SCANNED = ["mod.ts", "modules", "cli", "lib", "tools", "bench", "tests"];

/**
 * The import graph: each repository file (relative path) with what it imports. A target is a
 * repository file (relative path) or an external module (`npm:<name>`, `node:<name>`, a URL).
 */
export type ImportGraph = Map<string, string[]>;

export interface Rules {
  nodeEntries: readonly string[];
  userSideEntries: readonly string[];
  serverSide: readonly RegExp[];
}

export const RULES: Rules = {
  nodeEntries: NODE_ENTRIES,
  userSideEntries: USER_SIDE_ENTRIES,
  serverSide: SERVER_SIDE,
};

export interface Report {
  /**
   * One cycle of each strongly connected component, as a path whose last element is its first,
   * with the component's files (more than the cycle's when several cycles share files).
   */
  cycles: { path: string[]; component: string[] }[];
  /** Each offending import, `from -> to  (reason)`. */
  imports: string[];
}

/** The checker's core: cycles and layering violations of a graph. */
export function checkImports(graph: ImportGraph, rules: Rules = RULES): Report {
  const imports: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const why = layeringViolation(from, to);
      if (why) imports.push(`${from} -> ${to}  (${why})`);
    }
  }
  const isServerSide = (f: string) => rules.serverSide.some((re) => re.test(f));
  const reach = (entries: readonly string[], what: string) => {
    for (const entry of entries) {
      if (!graph.has(entry)) {
        imports.push(`${entry}: ${what} entry not in the graph`);
        continue;
      }
      for (const [from, to, chain] of serverSideFrontier(graph, entry, isServerSide)) {
        imports.push(`${from} -> ${to}  (${what} reaches server-side code: ${chain.join(" -> ")})`);
      }
    }
  };
  reach(rules.nodeEntries, "node program");
  reach(rules.userSideEntries, "user-side command");
  return { cycles: findCycles(graph), imports };
}

/** Top folder and, for modules/ and cli/, the program's folder: ["modules", "oarexec"]. */
function place(path: string): [string, string | undefined] {
  const parts = path.split("/");
  if (parts.length === 1) return [path, undefined];
  return [parts[0], parts.length > 2 ? parts[1] : undefined];
}

function layeringViolation(from: string, to: string): string | null {
  if (isExternal(to)) return null;
  const [fromTop, fromProgram] = place(from);
  const [toTop, toProgram] = place(to);
  switch (fromTop) {
    case "lib":
      if (["modules", "cli", "tools", "tests", "bench"].includes(toTop)) {
        return `lib/ imports ${toTop}/`;
      }
      return null;
    case "modules":
      if (toTop === "modules" && toProgram !== fromProgram) return "a module imports another";
      if (["cli", "tools", "tests", "bench"].includes(toTop)) return `modules/ imports ${toTop}/`;
      return null;
    case "cli":
      if (toTop === "cli" && toProgram !== fromProgram) return "a command imports another";
      if (["modules", "tools", "tests", "bench"].includes(toTop)) return `cli/ imports ${toTop}/`;
      return null;
    default:
      return null;
  }
}

function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/.test(target);
}

/**
 * The imports by which `entry` first reaches server-side code: each edge from a file that is
 * not server-side to one that is, with the shortest chain from the entry.
 */
function serverSideFrontier(
  graph: ImportGraph,
  entry: string,
  isServerSide: (f: string) => boolean,
): [string, string, string[]][] {
  const parent = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  const found: [string, string, string[]][] = [];
  const chainTo = (f: string) => {
    const chain = [];
    for (let c: string | null = f; c !== null; c = parent.get(c) ?? null) chain.unshift(c);
    return chain;
  };
  if (isServerSide(entry)) return [[entry, entry, [entry]]];
  while (queue.length) {
    const from = queue.shift()!;
    for (const to of graph.get(from) ?? []) {
      if (isServerSide(to)) {
        found.push([from, to, [...chainTo(from), to]]);
        continue;
      }
      if (parent.has(to)) continue;
      parent.set(to, from);
      queue.push(to);
    }
  }
  return found;
}

/** One cycle per strongly connected component of more than one file (or a file importing itself). */
function findCycles(graph: ImportGraph): { path: string[]; component: string[] }[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const inRepo = (f: string) => graph.has(f);
  // Iterative Tarjan: the repository's graph is small, but recursion depth is not our concern.
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    while (work.length) {
      const top = work[work.length - 1];
      const [v, i] = top;
      if (i === 0) {
        index.set(v, next);
        low.set(v, next);
        next++;
        stack.push(v);
        onStack.add(v);
      }
      const targets = (graph.get(v) ?? []).filter(inRepo);
      if (i < targets.length) {
        top[1]++;
        const w = targets[i];
        if (!index.has(w)) work.push([w, 0]);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work[work.length - 1][0];
        low.set(u, Math.min(low.get(u)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
      }
    }
  }
  return components.map((c) => ({ path: cycleThrough(graph, new Set(c)), component: c.sort() }));
}

/** A shortest cycle through the first (sorted) file of a strongly connected component. */
function cycleThrough(graph: ImportGraph, component: Set<string>): string[] {
  const start = [...component].sort()[0];
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let c = v; c !== start; c = parent.get(c)!) path.splice(1, 0, c);
        return [...path, start];
      }
      if (parent.has(w)) continue;
      parent.set(w, v);
      queue.push(w);
    }
  }
  return [start, start];
}

/** Every .ts file of SCANNED, relative to `root`, sorted. */
export async function repositoryFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(root, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(path);
    }
  };
  for (const top of SCANNED) {
    const stat = await Deno.stat(join(root, top)).catch(() => null);
    if (stat?.isDirectory) await walk(top);
    else if (stat?.isFile) files.push(top);
  }
  return files.sort();
}

interface DenoInfoDependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface DenoInfoModule {
  specifier: string;
  dependencies?: DenoInfoDependency[];
  error?: string;
}

/** The import graph of `files` (relative to `root`), from one `deno info --json`. */
export async function loadGraph(
  root: string,
  files: string[],
): Promise<{ graph: ImportGraph; errors: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "check_imports_" });
  try {
    const entry = join(dir, "all.ts");
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import "${pathToFileURL(join(root, f)).href}";\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", join(root, "deno.json"), entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`deno info failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: DenoInfoModule[];
    };
    const graph: ImportGraph = new Map();
    const errors: string[] = [];
    const name = (specifier: string): string | null => {
      if (specifier.startsWith("file:")) {
        const rel = relative(root, fileURLToPath(specifier));
        return rel.startsWith("..") ? null : rel;
      }
      const npm = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(specifier);
      return npm ? `npm:${npm[1]}` : specifier;
    };
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file:")) continue;
      const from = name(m.specifier);
      if (from === null) continue;
      if (m.error) errors.push(`${from}: ${m.error}`);
      const targets = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          const to = s ? name(s) : null;
          if (to !== null) targets.add(to);
        }
      }
      graph.set(from, [...targets].sort());
    }
    return { graph, errors };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export async function main(): Promise<number> {
  const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
  const files = await repositoryFiles(root);
  const { graph, errors } = await loadGraph(root, files);
  const report = checkImports(graph);
  for (const e of errors) console.error(`error: ${e}`);
  for (const { path, component } of report.cycles) {
    const more = component.length > path.length - 1
      ? ` (in a knot of ${component.join(", ")})`
      : "";
    console.error(`cycle: ${path.join(" -> ")}${more}`);
  }
  for (const i of report.imports) console.error(i);
  if (errors.length || report.cycles.length || report.imports.length) {
    console.error(
      `imports: ${report.cycles.length} cycle(s), ${report.imports.length} offending import(s)`,
    );
    return 1;
  }
  console.log(`imports: ${graph.size} files, no cycle, layering respected`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
