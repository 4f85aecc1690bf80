/**
 * `oarsub -S script`: `#OAR <option> <value>` lines of the script are options too (command
 * line options win). Returned as arguments for the same parser, so directives accept exactly
 * what the command line accepts.
 */
import { SubmissionError } from "./checks.ts";

/** Directives OAR reads from scripts, with whether they take a value. */
const DIRECTIVES: Record<string, boolean> = {
  "-l": true,
  "--resource": true,
  "-q": true,
  "--queue": true,
  "-p": true,
  "--property": true,
  "--checkpoint": true,
  "--notify": true,
  "-t": true,
  "--type": true,
  "-d": true,
  "--directory": true,
  "-n": true,
  "--name": true,
  "--project": true,
  "--hold": false,
  "-a": true,
  "--after": true,
  "--signal": true,
  "-O": true,
  "--stdout": true,
  "-E": true,
  "--stderr": true,
  "--array": true,
  "--array-param-file": true,
  "-k": false,
  "--use-job-key": false,
};

/** Arguments from a script's `#OAR` lines (the value is the rest of the line, trimmed). */
export function scanScriptText(text: string): string[] {
  const args: string[] = [];
  for (const raw of text.split("\n")) {
    if (!/^#OAR\s+/.test(raw)) continue;
    const line = raw.trim();
    const m = /^#OAR\s+(-{1,2}[A-Za-z][A-Za-z-]*)(?:\s+(.*?))?\s*$/.exec(line) ??
      /^#OAR\s+(-[A-Za-z])(.+?)\s*$/.exec(line);
    const takesValue = m ? DIRECTIVES[m[1]] : undefined;
    if (!m || takesValue === undefined || (takesValue && !m[2]) || (!takesValue && m[2])) {
      throw new SubmissionError(`Not able to parse line: ${line}`, -72);
    }
    args.push(m[1]);
    if (takesValue) args.push(m[2]!);
  }
  return args;
}

/** `read` reads the file with the caller's rights (in the command server: from the request). */
export async function scanScript(
  path: string,
  read: (path: string) => Promise<string> = Deno.readTextFile,
): Promise<string[]> {
  let text: string;
  try {
    text = await read(path);
  } catch {
    throw new SubmissionError(`Unable to read: ${path}`, -70);
  }
  return scanScriptText(text);
}
