// Label selectors with the Kubernetes semantics (apimachinery's LabelSelectorAsSelector), written
// once for every caller: IPAM pool nodeSelectors, the operator's checks, the agent's policy and
// multi-network watches. A selector is compiled once (validated, with a clear error naming the
// field) and then matched many times.
//
// Semantics kept here:
// - matchLabels and every matchExpression are ANDed; an EMPTY selector (`{}`) matches everything.
// - In: the label is present and its value is listed. NotIn: the label is absent, or its value is
//   not listed. Exists / DoesNotExist: presence only. In/NotIn need at least one value;
//   Exists/DoesNotExist take none. Any other operator is rejected, never silently matched.
// - An ABSENT (null/undefined) selector means different things in different API fields (a pool
//   without nodeSelector selects every node; Kubernetes' own conversion gives "nothing"), so the
//   caller states which with `absent`; there is no default to get wrong.

/** A label selector as the API writes it (metav1.LabelSelector). */
export interface LabelSelector {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: LabelSelectorRequirement[] | null;
}

export interface LabelSelectorRequirement {
  key: string;
  /** In, NotIn, Exists or DoesNotExist; anything else is rejected by compileSelector. */
  operator: string;
  values?: string[] | null;
}

export type Labels = Readonly<Record<string, string>> | null | undefined;

/** What an absent selector selects: the field's documented meaning decides. */
export type AbsentMeans = 'everything' | 'nothing';

/** A user's selector that cannot be used; `field` names the JSON path to fix. */
export class SelectorError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'SelectorError';
    this.field = field;
  }
}

type Op = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
interface Requirement {
  key: string;
  op: Op;
  values: ReadonlySet<string>;
}

/** A validated selector: match it against labels, or print it in the API's query-string form. */
export interface Selector {
  matches(labels: Labels): boolean;
  /** True when it selects everything (the empty selector, or absent with absent='everything'). */
  readonly everything: boolean;
  /** True when it selects nothing (absent with absent='nothing'). */
  readonly nothing: boolean;
  /** The `labelSelector` query form (`a=b,c in (x,y),!d`); '' for everything. */
  toString(): string;
}

const OPS: readonly Op[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
// Qualified name: optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key, or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !PREFIX.test(prefix)))
    return `label key ${JSON.stringify(key)} has an invalid prefix (a DNS subdomain before the "/")`;
  if (name.length === 0 || name.length > 63 || !NAME.test(name))
    return `label key ${JSON.stringify(key)} is invalid: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME.test(value))
    return `label value ${JSON.stringify(value)} is invalid: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  return undefined;
}

/**
 * Validates and compiles a selector. Throws SelectorError naming `field` (e.g.
 * `spec.pools[1].nodeSelector.matchExpressions[0].operator`) for an unknown operator, a missing or
 * extra value, or an invalid key or value.
 */
export function compileSelector(
  selector: LabelSelector | null | undefined,
  opts: { absent: AbsentMeans; field?: string },
): Selector {
  const field = opts.field ?? 'selector';
  if (selector === null || selector === undefined) return opts.absent === 'everything' ? EVERYTHING : NOTHING;
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const f = `${field}.matchLabels`;
    const kp = labelKeyProblem(key);
    if (kp) throw new SelectorError(f, kp);
    if (typeof value !== 'string') throw new SelectorError(`${f}.${key}`, 'value must be a string');
    const vp = labelValueProblem(value);
    if (vp) throw new SelectorError(`${f}.${key}`, vp);
    reqs.push({ key, op: 'In', values: new Set([value]) });
  }
  (selector.matchExpressions ?? []).forEach((e, i) => {
    const f = `${field}.matchExpressions[${i}]`;
    const kp = labelKeyProblem(e.key ?? '');
    if (kp) throw new SelectorError(`${f}.key`, kp);
    if (!OPS.includes(e.operator as Op))
      throw new SelectorError(
        `${f}.operator`,
        `unknown operator ${JSON.stringify(e.operator)}: use one of ${OPS.join(', ')}`,
      );
    const op = e.operator as Op;
    const values = e.values ?? [];
    if ((op === 'In' || op === 'NotIn') && values.length === 0)
      throw new SelectorError(`${f}.values`, `operator ${op} needs at least one value`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0)
      throw new SelectorError(`${f}.values`, `operator ${op} takes no values`);
    values.forEach((v, j) => {
      const vp = labelValueProblem(v);
      if (vp) throw new SelectorError(`${f}.values[${j}]`, vp);
    });
    reqs.push({ key: e.key, op, values: new Set(values) });
  });
  return fromRequirements(reqs);
}

/** One-shot match; prefer compileSelector when matching many objects against one selector. */
export function matchesSelector(
  selector: LabelSelector | null | undefined,
  labels: Labels,
  absent: AbsentMeans,
): boolean {
  return compileSelector(selector, { absent }).matches(labels);
}

/** Builds a selector from already-validated requirements (used by the string parser too). */
export function fromRequirements(reqs: readonly Requirement[]): Selector {
  // Sorted by key so that the printed form is stable whatever order the user wrote.
  const sorted = [...reqs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    everything: sorted.length === 0,
    nothing: false,
    matches: (labels) => sorted.every((r) => matchOne(r, labels ?? {})),
    toString: () => sorted.map(formatOne).join(','),
  };
}

export type { Requirement };

function matchOne(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.op) {
    case 'In':
      return has && r.values.has(labels[r.key]!);
    case 'NotIn':
      return !has || !r.values.has(labels[r.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

function formatOne(r: Requirement): string {
  const values = [...r.values].sort();
  switch (r.op) {
    case 'In':
      return values.length === 1 ? `${r.key}=${values[0]}` : `${r.key} in (${values.join(',')})`;
    case 'NotIn':
      return values.length === 1 ? `${r.key}!=${values[0]}` : `${r.key} notin (${values.join(',')})`;
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
  }
}

const EVERYTHING: Selector = {
  everything: true,
  nothing: false,
  matches: () => true,
  toString: () => '',
};

const NOTHING: Selector = {
  everything: false,
  nothing: true,
  matches: () => false,
  toString: () => {
    throw new Error('a selector that selects nothing has no query form: do not list at all');
  },
};
