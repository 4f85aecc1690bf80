/**
 * Who runs a command. The OS user comes from the process uid (`id -un` turns it into a name);
 * OARDO_USER, which oardodo sets for commands it runs on someone's behalf, is honoured only when
 * the real user is root or oar: anyone else could set it to act as another user.
 */
import { envGet } from "../runtime/env.ts";
import { currentScope } from "./scope.ts";

/** Users allowed to act on anyone's jobs and to act as another user. */
export const ADMIN_USERS: ReadonlySet<string> = new Set(["root", "oar"]);

export class IdentityError extends Error {}

/** The name of the OS user running this process. */
export async function osUserName(): Promise<string> {
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch { /* no --allow-sys=uid: fall back to the name id prints */ }
  try {
    const out = await new Deno.Command("id", {
      args: uid === null ? ["-un"] : ["-un", String(uid)],
      stdout: "piped",
      stderr: "null",
    }).output();
    const name = new TextDecoder().decode(out.stdout).trim();
    if (out.success && name !== "") return name;
  } catch { /* id not runnable: below */ }
  if (uid === 0) return "root";
  const fromEnv = envGet("USER") || envGet("LOGNAME");
  if (fromEnv) return fromEnv;
  throw new IdentityError("cannot tell which user runs this command");
}

/**
 * The user a command acts as. In the command server: the request's, which the server took from
 * the kernel. In a process of its own: OARDO_USER for root/oar, the OS user otherwise.
 */
export async function actingUser(): Promise<string> {
  const scope = currentScope();
  if (scope) return scope.user;
  const real = await osUserName();
  const asked = envGet("OARDO_USER");
  if (!asked || asked === real) return real;
  if (!ADMIN_USERS.has(real)) {
    throw new IdentityError(
      `only root or oar may act as another user (OARDO_USER=${asked}, you are ${real})`,
    );
  }
  return asked;
}

export function isAdmin(user: string): boolean {
  return ADMIN_USERS.has(user);
}
