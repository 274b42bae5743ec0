// The agent DaemonSet and the ConfigMap with its conflist. The DaemonSet is a contract: the lab
// starts agents from exactly what is rendered here (command, env, host paths), and the agent is
// configured only through this env. See docs/rendering.md for the table.
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { CONFLIST_KEY, conflistHash, conflistText } from './conflist.ts';
import { CONFLIST_HASH_ANNOTATION, agentSelector, commonLabels, namesFor } from './names.ts';
import { agentPaths } from './paths.ts';
import { renderData } from './templates.ts';

export const DEFAULT_AGENT_IMAGE = 'trellis/agent:0.1.0';
export const AGENT_METRICS_PORT = 9402;
/** The agent's requests and memory limit. No CPU limit (see the template). */
export const DEFAULT_AGENT_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { memory: '512Mi' },
};
/** Where the ConfigMap is mounted in the agent container. */
export const CONTAINER_CNI_CONFIG_DIR = '/etc/trellis/cni';

export interface AgentRenderOptions {
  namespace: string;
  /** Agent image; spec.agent.image wins over this, and this over DEFAULT_AGENT_IMAGE. */
  image?: string;
}

export function renderCniConfigMap(cn: ClusterNetwork, opts: AgentRenderOptions): KubeObject {
  return renderData<KubeObject>('configmap.yaml', {
    names: namesFor(cn),
    namespace: opts.namespace,
    labels: commonLabels(cn),
    conflistKey: CONFLIST_KEY,
    conflist: conflistText(cn),
  });
}

export function renderAgentDaemonSet(cn: ClusterNetwork, opts: AgentRenderOptions): KubeObject {
  const agent = cn.spec?.agent ?? {};
  const paths = agentPaths(cn);
  return renderData<KubeObject>('daemonset.yaml', {
    names: namesFor(cn),
    namespace: opts.namespace,
    labels: commonLabels(cn),
    selector: agentSelector(cn),
    podLabels: { ...commonLabels(cn), ...agentSelector(cn) },
    hashAnnotation: CONFLIST_HASH_ANNOTATION,
    conflistHash: conflistHash(conflistText(cn)),
    nodeSelector: { 'kubernetes.io/os': 'linux', ...(agent.nodeSelector ?? {}) },
    image: agent.image ?? opts.image ?? DEFAULT_AGENT_IMAGE,
    clusterNetwork: cn.metadata.name,
    logLevel: agent.logLevel ?? 'info',
    containerSocket: paths.containerSocket,
    cniConfigFile: `${CONTAINER_CNI_CONFIG_DIR}/${CONFLIST_KEY}`,
    metricsPort: AGENT_METRICS_PORT,
    metricsPortText: String(AGENT_METRICS_PORT),
    hostPaths: paths,
    resources: DEFAULT_AGENT_RESOURCES,
  });
}
