/**
 * What a small file costs on this machine: CPU (user + kernel) per file for creating, rewriting,
 * renaming and removing, and for the agent's recycled job files (modules/oarexec/recycled_files.ts)
 * against plain ones. Run in the directory to measure (default: a temporary directory).
 *
 *   deno task bench:files [--dir DIR] [--files N]
 */
import { parseArgs } from "node:util";
import { cpuUsage } from "node:process";
import { join } from "node:path";
import { plainFiles, type SmallFiles } from "../lib/exec/job_files.ts";
import { RecycledFiles } from "../modules/oarexec/recycled_files.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { dir: { type: "string" }, files: { type: "string", default: "2000" } },
});
const n = Number(values.files);
if (!Number.isInteger(n) || n <= 0) {
  console.error("--files wants a positive integer");
  Deno.exit(2);
}
const base = values.dir ?? (await Deno.makeTempDir({ prefix: "oar-bench-files-" }));
const dir = await Deno.makeTempDir({ dir: base, prefix: "run-" });

function cpuMicros(fn: (i: number) => void): number {
  const before = cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const used = cpuUsage(before);
  return (used.user + used.system) / n;
}

const path = (name: string, i: number) => join(dir, `${name}${i}`);
const rows: [string, number][] = [
  ["create", cpuMicros((i) => Deno.writeTextFileSync(path("f", i), "12345"))],
  ["rewrite", cpuMicros((i) => Deno.writeTextFileSync(path("f", i), "67890"))],
  ["rename", cpuMicros((i) => Deno.renameSync(path("f", i), path("g", i)))],
  ["remove", cpuMicros((i) => Deno.removeSync(path("g", i)))],
];
// One file written over and over, as a recycled spare is: truncated to nothing first (what
// writeTextFileSync does), or written over and cut to its new length.
const again = path("again", 0);
Deno.writeTextFileSync(again, "a first content\n");
rows.push([
  "same file, truncated + written",
  cpuMicros((i) => Deno.writeTextFileSync(again, `${i}\n`)),
]);
const encoder = new TextEncoder();
const bytes = (i: number) => encoder.encode(`${i}\n`);
rows.push([
  "same file, written + cut",
  cpuMicros((i) => {
    const b = bytes(i);
    const f = Deno.openSync(again, { write: true });
    f.writeSync(b);
    f.truncateSync(b.length);
    f.close();
  }),
]);
Deno.removeSync(again);

/** A job's three files written then removed, as the agent does, `n` times. */
function jobs(files: SmallFiles): number {
  return cpuMicros((i) => {
    const names = ["node", "res", "pid"].map((k) => path(k, i));
    for (const f of names) files.write(f, `job ${i}\n`);
    for (const f of names) files.remove(f);
  });
}
rows.push(["job files, plain (3 files)", jobs(plainFiles)]);
const recycled = new RecycledFiles(dir);
rows.push(["job files, recycled (3 files)", jobs(recycled)]);
recycled.clear();

console.log(`small files in ${dir}, ${n} each, CPU per operation:`);
for (const [what, us] of rows) console.log(`  ${what.padEnd(30)} ${us.toFixed(0).padStart(6)} µs`);
await Deno.remove(values.dir ? dir : base, { recursive: true });
