// The agent's identity, its least-privilege ClusterRole (the rules live in the template, with the
// reason for each write), the Role to read peer-password Secrets by name, and the admission policy that narrows each agent to its own node's
// objects, which RBAC cannot express. Cluster-scoped objects carry the ClusterNetwork's name suffix.
import { API_VERSION, GROUP } from '../api/group.ts';
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { commonLabels, namesFor } from './names.ts';
import { renderData } from './templates.ts';

/** The username the API server gives the agent's ServiceAccount tokens. */
export function agentUsername(cn: ClusterNetwork, namespace: string): string {
  return `system:serviceaccount:${namespace}:${namesFor(cn).agent}`;
}

/**
 * The Secrets holding backend.bgp peer passwords that the agent may read: those in its own
 * namespace (namespace unset or equal). One elsewhere is a finding (realisable.ts), never a grant.
 */
export function peerPasswordSecrets(cn: ClusterNetwork, namespace: string): string[] {
  const names = (cn.spec?.backend?.bgp?.peers ?? []).flatMap((p) => {
    const ref = p.password?.secretKeyRef;
    return ref && (ref.namespace ?? namespace) === namespace ? [ref.name] : [];
  });
  return [...new Set(names)].sort();
}

export function renderAgentRbac(cn: ClusterNetwork, opts: { namespace: string }): KubeObject[] {
  const data = {
    names: namesFor(cn),
    namespace: opts.namespace,
    labels: commonLabels(cn),
    group: GROUP,
    apiVersion: API_VERSION,
    clusterNetwork: cn.metadata.name,
    agentUser: agentUsername(cn, opts.namespace),
    secretNames: peerPasswordSecrets(cn, opts.namespace),
  };
  const secrets = data.secretNames.length
    ? [
        renderData<KubeObject>('agent-secrets-role.yaml', data),
        renderData<KubeObject>('agent-secrets-rolebinding.yaml', data),
      ]
    : [];
  return [
    renderData<KubeObject>('serviceaccount.yaml', data),
    renderData<KubeObject>('clusterrole.yaml', data),
    renderData<KubeObject>('clusterrolebinding.yaml', data),
    renderData<KubeObject>('agent-admission-policy.yaml', data),
    renderData<KubeObject>('agent-admission-binding.yaml', data),
    ...secrets,
  ];
}
