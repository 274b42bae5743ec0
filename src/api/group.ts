// The Trellis API group and the kinds it serves. One place, so a rename is one edit.
import type { Resource } from '../kube/resource.ts';

export const GROUP = 'network.trellis.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const ClusterNetworkResource: Resource = {
  group: GROUP,
  version: VERSION,
  plural: 'clusternetworks',
  kind: 'ClusterNetwork',
  namespaced: false,
};

/** One per block of a pool; holds its node affinity and every allocation inside it. */
export const IPBlockResource: Resource = {
  group: GROUP,
  version: VERSION,
  plural: 'ipblocks',
  kind: 'IPBlock',
  namespaced: false,
};

/** Per-node agent status (readiness, kernel features, programmed peers). */
export const NodeNetworkStatusResource: Resource = {
  group: GROUP,
  version: VERSION,
  plural: 'nodenetworkstatuses',
  kind: 'NodeNetworkStatus',
  namespaced: false,
};
