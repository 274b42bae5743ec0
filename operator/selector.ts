// The operator's --selector decides which ClusterNetworks it handles (sharding, tests). The watch
// applies it server-side; this applies the same selector to objects fetched by name.
/** Equality-based label selector match (`a=b,c=d`, `a`); enough for the operator's --selector. */
export function selectorMatches(selector: string | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return selector
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .every((term) => {
      const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
      if (!m) return term.startsWith('!') ? !(term.slice(1) in labels) : term in labels;
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? labels[key] !== value : labels[key] === value;
    });
}
