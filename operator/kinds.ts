// The kinds the operator renders and owns, mapped to where they live in the API. Pruning, cleanup
// and drift watches iterate this list, so a new rendered kind is one line here.
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin, type Resource } from '../src/kube/resource.ts';

export const OWNED_KINDS: readonly Resource[] = [
  Builtin.ServiceAccount,
  Builtin.ClusterRole,
  Builtin.ClusterRoleBinding,
  Builtin.Role,
  Builtin.RoleBinding,
  Builtin.ValidatingAdmissionPolicy,
  Builtin.ValidatingAdmissionPolicyBinding,
  Builtin.ConfigMap,
  Builtin.DaemonSet,
  Builtin.NetworkAttachmentDefinition,
];

export function resourceFor(obj: KubeObject): Resource {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion.split('/')[0] : '';
  const r = OWNED_KINDS.find((k) => k.kind === obj.kind && k.group === group);
  if (!r)
    throw new Error(
      `rendered object ${obj.kind} ${obj.metadata.name} (${obj.apiVersion}) is not a kind the operator knows how to apply`,
    );
  return r;
}

/** Identity of an object across kinds: kind/namespace/name. */
export function objectId(obj: Pick<KubeObject, 'kind' | 'metadata'>): string {
  return `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}
