// The "essence" of an object is the part whose change means the user asked for something: spec,
// labels and annotations (minus the framework's own bookkeeping). It is stored after each handled
// change so the next cycle can tell create from update from nothing-to-do, and which fields changed.
import { createHash } from 'node:crypto';
import type { KubeObject } from '../kube/object.ts';

export const ANNOTATION_PREFIX = 'network.trellis.dev/';
export const PROGRESS_ANNOTATION = `${ANNOTATION_PREFIX}progress`;
export const LAST_HANDLED_ANNOTATION = `${ANNOTATION_PREFIX}last-handled-configuration`;

/** Annotations that never count as a user change. */
const IGNORED_ANNOTATIONS = new Set([
  PROGRESS_ANNOTATION,
  LAST_HANDLED_ANNOTATION,
  'kubectl.kubernetes.io/last-applied-configuration',
]);

export interface Essence {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
}

export interface DiffEntry {
  op: 'add' | 'change' | 'remove';
  /** Dotted path, e.g. `spec.backend.mtu`. */
  path: string;
  old: unknown;
  new: unknown;
}

export function essenceOf(body: KubeObject): Essence {
  const labels =
    body.metadata.labels && Object.keys(body.metadata.labels).length ? body.metadata.labels : undefined;
  const kept = Object.entries(body.metadata.annotations ?? {}).filter(([k]) => !IGNORED_ANNOTATIONS.has(k));
  const annotations = kept.length ? Object.fromEntries(kept) : undefined;
  const metadata: Essence['metadata'] = {};
  if (labels) metadata.labels = labels;
  if (annotations) metadata.annotations = annotations;
  return body.spec === undefined ? { metadata } : { metadata, spec: body.spec };
}

/** The essence last handled, or undefined if the object was never handled (a create). */
export function lastHandledEssence(body: KubeObject): Essence | undefined {
  const raw = body.metadata.annotations?.[LAST_HANDLED_ANNOTATION];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as Essence;
  } catch {
    return undefined;
  }
}

/** JSON with sorted keys, so equal values always serialise the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function digest(value: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(value ?? null))
    .digest('hex')
    .slice(0, 16);
}

/** Value at a dotted path; undefined when any step is missing. */
export function getField(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Leaf-level differences between two values; arrays compare as whole values. */
export function diff(oldValue: unknown, newValue: unknown, path = ''): DiffEntry[] {
  if (canonicalJson(oldValue) === canonicalJson(newValue)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(oldValue) && isObj(newValue)) {
    const keys = [...new Set([...Object.keys(oldValue), ...Object.keys(newValue)])].sort();
    return keys.flatMap((k) => diff(oldValue[k], newValue[k], path ? `${path}.${k}` : k));
  }
  if (oldValue === undefined) return [{ op: 'add', path, old: undefined, new: newValue }];
  if (newValue === undefined) return [{ op: 'remove', path, old: oldValue, new: undefined }];
  return [{ op: 'change', path, old: oldValue, new: newValue }];
}

/** True when a diff touches the field path (the field itself, inside it, or a parent of it). */
export function diffTouches(entries: DiffEntry[], field: string): boolean {
  return entries.some(
    (e) =>
      e.path === field || e.path.startsWith(`${field}.`) || field.startsWith(`${e.path}.`) || e.path === '',
  );
}
