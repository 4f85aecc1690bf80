/**
 * Reads an environment variable without needing `--allow-env` for it: modules run with tight
 * flags, and a variable they were not granted is simply absent for them.
 */
export function envGet(name: string): string | undefined {
  const state = Deno.permissions.querySync?.({ name: "env", variable: name }).state;
  if (state !== "granted") return undefined;
  return Deno.env.get(name);
}

/** Whether the file system path can be read under the current permissions. */
export function canRead(path: string): boolean {
  return Deno.permissions.querySync?.({ name: "read", path }).state === "granted";
}
