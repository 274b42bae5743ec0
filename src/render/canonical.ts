// Canonical form for rendered data: object keys sorted at every depth, arrays kept in order.
// Rendered manifests and conflists go through here so two renders of one spec are byte-identical
// and diffs (git, server-side apply, snapshots) show only real changes.

/** A deep copy of value with every object's keys in sorted order; undefined members dropped. */
export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => sortKeys(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out as T;
  }
  return value;
}

/** Pretty JSON (two-space indent, sorted keys, trailing newline): the text form of rendered files. */
export function canonicalJson(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}
