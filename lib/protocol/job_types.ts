/** Job types as stored in `job_types` rows, parsed (docs/differences.md §16: one parser). */

export type JobTypes = Record<string, string | true | Record<string, number>>;

/** `k=v` ⇒ "v", bare ⇒ true, `token:NAME=N` ⇒ `{token: {NAME: N}}`. */
export function parseJobTypes(types: readonly string[]): JobTypes {
  const out: JobTypes = {};
  for (const t of types) {
    const tok = /^token:([^=]+)=(\d+)$/.exec(t);
    if (tok) {
      const tokens = (typeof out.token === "object" ? out.token : {}) as Record<string, number>;
      tokens[tok[1]] = Number(tok[2]);
      out.token = tokens;
      continue;
    }
    const eq = t.indexOf("=");
    if (eq > 0) out[t.slice(0, eq)] = t.slice(eq + 1);
    else if (t !== "") out[t] = true;
  }
  return out;
}
