/** `deno task gen:deploy`: rewrites deploy/oar.conf and deploy/PERMISSIONS.md from the code. */
import { join } from "node:path";
import { permissionsDoc, sampleOarConf } from "./deploy_docs.ts";
import { projectRoot } from "../lib/runtime/paths.ts";

await Deno.mkdir(join(projectRoot, "deploy"), { recursive: true });
await Deno.writeTextFile(join(projectRoot, "deploy/oar.conf"), sampleOarConf());
await Deno.writeTextFile(join(projectRoot, "deploy/PERMISSIONS.md"), permissionsDoc());
console.log("wrote deploy/oar.conf and deploy/PERMISSIONS.md");
