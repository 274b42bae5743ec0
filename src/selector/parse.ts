// The query-string form of a label selector (`tier=web,zone in (a,b),!legacy`), as kubectl and the
// API's `labelSelector` parameter write it: parsed into the same compiled Selector as the object
// form, so a flag such as the operator's --selector matches exactly what the server would select.
import {
  SelectorError,
  fromRequirements,
  labelKeyProblem,
  labelValueProblem,
  type Requirement,
  type Selector,
} from './selector.ts';

/**
 * Parses `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, joined by commas.
 * The empty string selects everything. Throws SelectorError naming `field` for anything else.
 */
export function parseSelector(text: string, field = 'selector'): Selector {
  const reqs: Requirement[] = [];
  for (const term of splitTerms(text, field)) reqs.push(parseTerm(term, field));
  return fromRequirements(reqs);
}

function splitTerms(text: string, field: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0 || depth > 1)
      throw new SelectorError(field, `unbalanced parentheses in ${JSON.stringify(text)}`);
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new SelectorError(field, `unbalanced parentheses in ${JSON.stringify(text)}`);
  terms.push(cur);
  const trimmed = terms.map((t) => t.trim());
  if (trimmed.length === 1 && trimmed[0] === '') return [];
  if (trimmed.some((t) => t === '')) throw new SelectorError(field, `empty term in ${JSON.stringify(text)}`);
  return trimmed;
}

function parseTerm(term: string, field: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term);
  if (set) {
    const [, key, op, list] = set as unknown as [string, string, string, string];
    const values = list.split(',').map((v) => v.trim());
    if (values.length === 1 && values[0] === '')
      throw new SelectorError(field, `${JSON.stringify(term)}: "${op}" needs at least one value`);
    return requirement(key, op === 'in' ? 'In' : 'NotIn', values, term, field);
  }
  const eq = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (eq) {
    const [, key, op, value] = eq as unknown as [string, string, string, string];
    return requirement(key, op === '!=' ? 'NotIn' : 'In', [value], term, field);
  }
  const exists = /^(!?)\s*([^!=\s()]+)$/.exec(term);
  if (exists) {
    const [, bang, key] = exists as unknown as [string, string, string];
    return requirement(key, bang ? 'DoesNotExist' : 'Exists', [], term, field);
  }
  throw new SelectorError(
    field,
    `cannot parse ${JSON.stringify(term)}: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`,
  );
}

function requirement(
  key: string,
  op: Requirement['op'],
  values: string[],
  term: string,
  field: string,
): Requirement {
  const kp = labelKeyProblem(key);
  if (kp) throw new SelectorError(field, `${JSON.stringify(term)}: ${kp}`);
  for (const v of values) {
    const vp = labelValueProblem(v);
    if (vp) throw new SelectorError(field, `${JSON.stringify(term)}: ${vp}`);
  }
  return { key, op, values: new Set(values) };
}
