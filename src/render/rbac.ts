// The agent's identity and its least-privilege ClusterRole (the rules live in the template, with
// the reason for each write). Cluster-scoped objects carry the ClusterNetwork's name suffix.
import { GROUP } from '../api/group.ts';
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { commonLabels, namesFor } from './names.ts';
import { renderData } from './templates.ts';

export function renderAgentRbac(cn: ClusterNetwork, opts: { namespace: string }): KubeObject[] {
  const data = { names: namesFor(cn), namespace: opts.namespace, labels: commonLabels(cn), group: GROUP };
  return [
    renderData<KubeObject>('serviceaccount.yaml', data),
    renderData<KubeObject>('clusterrole.yaml', data),
    renderData<KubeObject>('clusterrolebinding.yaml', data),
  ];
}
