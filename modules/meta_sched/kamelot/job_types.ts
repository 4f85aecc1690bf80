/**
 * The job types (`-t ...`, job_types rows) that change where Kamelot may place a job
 * (docs/modules.md §11 Kamelot "Extras"; timesharing has its own module):
 *   - `container[=<name>]`: the job's resources and window become a slot set named after the
 *     job id (or `<name>`), where its inner jobs are placed;
 *   - `inner=<name>`: placed inside that container, never beyond its resources or its end;
 *   - `placeholder=<name>`: the resources it takes stay usable by jobs `allow=<name>`;
 *   - `allow=<name>`: may use (and then consumes) what placeholder `<name>` holds.
 */
export interface SchedTypes {
  /** "" for a bare `container` (the slot set is then named after the job id). */
  container: string | null;
  inner: string | null;
  placeholder: string | null;
  allow: string | null;
}

export function schedTypes(types: readonly string[]): SchedTypes {
  const out: SchedTypes = { container: null, inner: null, placeholder: null, allow: null };
  for (const t of types) {
    const i = t.indexOf("=");
    const key = (i < 0 ? t : t.slice(0, i)).trim();
    const value = i < 0 ? "" : t.slice(i + 1).trim();
    if (key === "container") out.container = value;
    // The others mean nothing without a name.
    else if (value === "") continue;
    else if (key === "inner") out.inner = value;
    else if (key === "placeholder") out.placeholder = value;
    else if (key === "allow") out.allow = value;
  }
  return out;
}
