/** oarresume (lib/cli/hold_resume.ts). */
import { holdResumeMain } from "../../lib/cli/hold_resume.ts";

export function main(args: string[]): Promise<number> {
  return holdResumeMain("resume", args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
