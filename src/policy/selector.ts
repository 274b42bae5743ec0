// The one place the policy compiler reaches label-selector matching: the shared selector module.
import { compileSelector, type LabelSelector } from '../selector/index.ts';
import type { Matcher } from './types.ts';

export type { LabelSelector };

/** Compiles a selector (an empty one selects everything); throws naming `field` when unusable. */
export function matcher(selector: LabelSelector, field: string): Matcher {
  const s = compileSelector(selector, { absent: 'everything', field });
  return { matches: (labels) => s.matches(labels), text: s.toString() };
}
