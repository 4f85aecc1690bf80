/**
 * The job user's account on this node (docs/modules.md §4.5: no shell ⇒ exit 7): /etc/passwd first,
 * then `getent passwd` so that NSS users (LDAP, sssd) are found too.
 */
export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

const NAME_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}\$?$/;

/** Whether `name` has the shape of a user name (it may still name no account). */
export function isValidUserName(name: string): boolean {
  return NAME_RE.test(name);
}

export function parsePasswdLine(line: string): Account | null {
  const f = line.split(":");
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[6] === "") return null;
  return { name: f[0], uid, gid, home: f[5], shell: f[6] };
}

/** The account, or null when the user is unknown (or the name is not a valid user name). */
export function lookupAccount(name: string): Promise<Account | null> {
  if (!NAME_RE.test(name)) return Promise.resolve(null);
  return findAccount((a) => a.name === name, name, (line) => line.startsWith(name + ":"));
}

/** The account of a uid (the command server's caller), or null when it has none. */
export function lookupAccountByUid(uid: number): Promise<Account | null> {
  if (!Number.isInteger(uid) || uid < 0) return Promise.resolve(null);
  return findAccount((a) => a.uid === uid, String(uid));
}

/**
 * /etc/passwd first, then `getent passwd <key>` for NSS accounts; `quick` skips the lines that
 * cannot match before they are parsed.
 */
async function findAccount(
  matches: (a: Account) => boolean,
  getentKey: string,
  quick: (line: string) => boolean = () => true,
): Promise<Account | null> {
  try {
    // Synchronous: a small local file, read once a job (see job_files.ts on thread hand-offs).
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      if (!quick(line)) continue;
      const a = parsePasswdLine(line);
      if (a && matches(a)) return a;
    }
  } catch { /* fall through to getent */ }
  try {
    const out = await new Deno.Command("getent", {
      args: ["passwd", "--", getentKey],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    const a = parsePasswdLine(new TextDecoder().decode(out.stdout).trim());
    return a && matches(a) ? a : null;
  } catch {
    return null;
  }
}
