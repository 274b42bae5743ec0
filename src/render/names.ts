// Names and labels of everything rendered for one ClusterNetwork. The ClusterNetwork named
// `default` gets the plain names (trellis-agent); any other gets its name as a suffix, so several
// ClusterNetworks never collide. Names are part of the contract with the lab and the operator.
import type { ClusterNetwork } from '../api/clusternetwork.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'trellis';
export const CLUSTER_NETWORK_LABEL = 'network.trellis.dev/cluster-network';
export const CONFLIST_HASH_ANNOTATION = 'network.trellis.dev/conflist-hash';

export interface RenderedNames {
  /** ServiceAccount, DaemonSet, ClusterRole and ClusterRoleBinding. */
  agent: string;
  /** ConfigMap holding the conflist. */
  cniConfig: string;
  /** CNI network name in the conflist. */
  network: string;
}

export function namesFor(cn: ClusterNetwork): RenderedNames {
  const name = cn.metadata.name;
  const suffix = name === 'default' ? '' : `-${name}`;
  return {
    agent: `trellis-agent${suffix}`,
    cniConfig: `trellis-cni-config${suffix}`,
    network: `trellis${suffix}`,
  };
}

/** Labels on every rendered object: who manages it and for which ClusterNetwork. */
export function commonLabels(cn: ClusterNetwork): Record<string, string> {
  return {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [CLUSTER_NETWORK_LABEL]: cn.metadata.name,
    'app.kubernetes.io/part-of': 'trellis',
  };
}

/** The DaemonSet's selector (immutable once created, so it never includes anything that may change). */
export function agentSelector(cn: ClusterNetwork): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'trellis-agent',
    [CLUSTER_NETWORK_LABEL]: cn.metadata.name,
  };
}
