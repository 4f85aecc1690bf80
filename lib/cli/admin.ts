/** The check every admin command (oarnodesetting, oarproperty, oarnotify changes) starts with. */
import { CliError } from "./frame.ts";
import { actingUser, isAdmin } from "./identity.ts";

export async function requireAdmin(command: string): Promise<string> {
  const user = await actingUser();
  if (!isAdmin(user)) {
    throw new CliError(`${command}: only root or oar may do this (you are ${user})`, 1);
  }
  return user;
}
