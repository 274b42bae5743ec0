// Asks the real API server's authorizer (SubjectAccessReview) whether a user may do something, so
// RBAC tests honour `*`, resourceNames, Roles and aggregation exactly as the API server does.
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import type { Resource } from '../../src/kube/resource.ts';

const SubjectAccessReview: Resource = {
  group: 'authorization.k8s.io',
  version: 'v1',
  plural: 'subjectaccessreviews',
  kind: 'SubjectAccessReview',
  namespaced: false,
};

/** `verb group/resource[/subresource] [ns/]name`, e.g. `patch network.trellis.dev/ipblocks`. */
export interface Access {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export function describeAccess(a: Access): string {
  const res = `${a.group || 'core'}/${a.resource}${a.subresource ? `/${a.subresource}` : ''}`;
  return `${a.verb} ${res}${a.namespace ? ` in ${a.namespace}` : ''}${a.name ? ` named ${a.name}` : ''}`;
}

export async function allowed(
  kube: KubeClient,
  user: string,
  groups: string[],
  a: Access,
  extra?: Record<string, string[]>,
): Promise<boolean> {
  const review = await kube.create<KubeObject & { status?: { allowed?: boolean } }>(SubjectAccessReview, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    metadata: { name: '' },
    spec: { user, groups, ...(extra ? { extra } : {}), resourceAttributes: { ...a } },
  } as KubeObject);
  return review.status?.allowed === true;
}

/** Every access of the list that the user is NOT granted (expected: []). */
export async function missing(
  kube: KubeClient,
  user: string,
  groups: string[],
  list: Access[],
): Promise<string[]> {
  const out: string[] = [];
  for (const a of list) if (!(await allowed(kube, user, groups, a))) out.push(describeAccess(a));
  return out;
}

/** Every access of the list that the user IS granted (expected: []). */
export async function granted(
  kube: KubeClient,
  user: string,
  groups: string[],
  list: Access[],
): Promise<string[]> {
  const out: string[] = [];
  for (const a of list) if (await allowed(kube, user, groups, a)) out.push(describeAccess(a));
  return out;
}

/** Expands `verbs` over one resource into Access entries. */
export function verbs(vs: string[], a: Omit<Access, 'verb'>): Access[] {
  return vs.map((verb) => ({ verb, ...a }));
}
