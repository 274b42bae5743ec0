// Renders a ClusterNetwork into the objects the operator applies: the agent's ServiceAccount,
// ClusterRole and ClusterRoleBinding, the conflist ConfigMap, the agent DaemonSet, and one
// NetworkAttachmentDefinition per attachment. Pure and deterministic: same input, same bytes.
// It never talks to the API server; applying is the operator's job.
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { renderAgentDaemonSet, renderCniConfigMap, type AgentRenderOptions } from './agent.ts';
import { renderAttachments } from './nad.ts';
import { renderAgentRbac } from './rbac.ts';

export type RenderOptions = AgentRenderOptions;

export function renderClusterNetwork(cn: ClusterNetwork, opts: RenderOptions): KubeObject[] {
  return [
    ...renderAgentRbac(cn, opts),
    renderCniConfigMap(cn, opts),
    renderAgentDaemonSet(cn, opts),
    ...renderAttachments(cn),
  ];
}

export { CONFLIST_CNI_VERSION, CONFLIST_KEY, conflistFor, conflistText } from './conflist.ts';
export { AGENT_METRICS_PORT, DEFAULT_AGENT_IMAGE } from './agent.ts';
export { attachmentPoolName, nadConfigFor } from './nad.ts';
export {
  CLUSTER_NETWORK_LABEL,
  CONFLIST_HASH_ANNOTATION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  namesFor,
} from './names.ts';
export { agentPaths } from './paths.ts';
