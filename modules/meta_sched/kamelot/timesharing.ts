/**
 * Timesharing (`-t timesharing=<who>,<what>`, docs/modules.md §11 Kamelot "Extras"): jobs whose
 * keys are equal may run on the same resources at the same time. `<who>` is `user` (only the
 * owner's jobs) or `*` (anyone's), `<what>` is `name` (only jobs of the same name) or `*` (any
 * name); as in OAR, the key is the pair after substitution, so `user,*` jobs of alice share with
 * each other but not with `*,*` jobs.
 */

/** The sharing key of a job, or null when it does not timeshare. */
export function timesharingKey(
  types: readonly string[],
  user: string,
  name: string | null,
): string | null {
  for (const t of types) {
    const [key, value] = t.trim().split("=", 2);
    if (key !== "timesharing") continue;
    const [who = "*", what = "*"] = (value ?? "").split(",").map((s) => s.trim());
    const u = who === "user" ? user : "*";
    const n = what === "name" ? (name ?? "") : "*";
    // "u:" and "n:" tags keep a user literally named "*" apart from the wildcard.
    return `${who === "user" ? "u:" + u : "*"}\u0000${what === "name" ? "n:" + n : "*"}`;
  }
  return null;
}
