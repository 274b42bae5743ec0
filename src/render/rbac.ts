// The agent's identity, its least-privilege ClusterRole (the rules live in the template, with the
// reason for each write), and the admission policy that narrows each agent to its own node's
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

export function renderAgentRbac(cn: ClusterNetwork, opts: { namespace: string }): KubeObject[] {
  const data = {
    names: namesFor(cn),
    namespace: opts.namespace,
    labels: commonLabels(cn),
    group: GROUP,
    apiVersion: API_VERSION,
    clusterNetwork: cn.metadata.name,
    agentUser: agentUsername(cn, opts.namespace),
  };
  return [
    renderData<KubeObject>('serviceaccount.yaml', data),
    renderData<KubeObject>('clusterrole.yaml', data),
    renderData<KubeObject>('clusterrolebinding.yaml', data),
    renderData<KubeObject>('agent-admission-policy.yaml', data),
    renderData<KubeObject>('agent-admission-binding.yaml', data),
  ];
}
