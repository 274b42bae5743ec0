// The one place the policy compiler reaches label-selector matching. Kept to this file so the
// switch to the shared selector module (src/selector) is a one-line change.
import type { LabelSelector } from '../api/clusternetwork.ts';
import { matchesSelector } from '../render/selector.ts';
import type { Matcher } from './types.ts';

const OPS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Compiles a selector; throws naming `field` when it cannot be used. */
export function matcher(selector: LabelSelector, field: string): Matcher {
  for (const [i, e] of (selector.matchExpressions ?? []).entries()) {
    if (!OPS.has(e.operator))
      throw new Error(
        `${field}.matchExpressions[${i}].operator: unknown operator ${JSON.stringify(e.operator)}`,
      );
  }
  const text = JSON.stringify([
    Object.entries(selector.matchLabels ?? {}).sort(),
    (selector.matchExpressions ?? []).map((e) => [e.key, e.operator, [...(e.values ?? [])].sort()]),
  ]);
  return { matches: (labels) => matchesSelector({ ...labels }, selector), text };
}
